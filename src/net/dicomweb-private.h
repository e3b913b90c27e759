/* SPDX-License-Identifier: MIT
 *
 * A DICOMweb client (PS3.18): QIDO-RS searches, WADO-RS retrieval of one
 * instance, STOW-RS stores, over libcurl. One client is one connection,
 * used from one thread.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "cxr/ingest.h" /* cxr_dicomweb_auth_read */

G_BEGIN_DECLS

typedef struct _CxrDicomweb CxrDicomweb;

CxrDicomweb *cxr__dicomweb_new (const char *url, const char *auth, const char *ca_file,
                                double timeout_s, GError **error);
void cxr__dicomweb_free (CxrDicomweb *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrDicomweb, cxr__dicomweb_free)
const char *cxr__dicomweb_url (const CxrDicomweb *c);
long cxr__dicomweb_last_status (const CxrDicomweb *c);

GPtrArray *cxr__dicomweb_search (CxrDicomweb *c, const char *path, const char *query, guint page,
                                 GError **error);
gboolean cxr__dicomweb_retrieve_instance (CxrDicomweb *c, const char *study, const char *series,
                                          const char *sop, const char *dest, guint64 max_bytes,
                                          GError **error);
gboolean cxr__dicomweb_store (CxrDicomweb *c, const char *study, GPtrArray *objects,
                              GError **error);

char *cxr__dicom_json_string (JsonObject *dataset, const char *tag);
JsonArray *cxr__dicom_json_parse (const guint8 *data, gsize n, const char *name,
                                  JsonParser **parser, GError **error);
gboolean cxr__multipart_first_part (const guint8 *data, gsize n, const char *content_type,
                                    const char *name, gsize *off, gsize *len, GError **error);
gboolean cxr__dicom_uid_ok (const char *uid);

G_END_DECLS
