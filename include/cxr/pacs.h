/* SPDX-License-Identifier: MIT
 *
 * Results back to a PACS: per film compared with a prior, a DICOM SR of
 * the comparison and a Secondary Capture of the change overlay, stored
 * over DICOMweb (STOW-RS) into the film's own study.
 */
#pragma once

#include <glib.h>

#include "shard.h"
#include "store.h"

G_BEGIN_DECLS

typedef struct {
  const char *auth;            /* "user:password" or a bearer token, or NULL */
  const char *ca_file;         /* PEM CAs to verify the server with; NULL: the system's */
  double timeout_s;            /* a transfer idle this long is abandoned; <= 0: 60 s */
  const char *const *patients; /* only these patients (NULL-terminated); NULL: all */
  gboolean flagged;            /* only patients with a progression flag */
  CxrShard shard;              /* only this shard's patients (n = 0: all) */
} CxrPushOptions;

typedef struct {
  guint64 n_films;     /* films with a prior that were described */
  guint64 n_sent;      /* objects stored in the PACS by this run */
  guint64 n_present;   /* objects the PACS held already (same UID): not sent */
  guint64 n_not_dicom; /* compared films not read from DICOM: no study to file into */
  guint64 n_failed;    /* films whose objects could not be made or sent */
  guint64 n_messages;  /* all problems; messages keeps the first ones */
  GPtrArray *messages; /* (element-type utf8) */
} CxrPushSummary;

void cxr_push_summary_init (CxrPushSummary *summary);
void cxr_push_summary_clear (CxrPushSummary *summary);
gboolean cxr_push (CxrStore *store, const char *url, const CxrPushOptions *options,
                   CxrPushSummary *summary, GError **error);

G_END_DECLS
