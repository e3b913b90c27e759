/* SPDX-License-Identifier: MIT
 *
 * The DICOM objects cxrtrack writes (dicom-out.cc) are made in the module
 * cxrtrack-dcmtk (src/image/dicom-load.c): these forward to it.
 */
#include "dicom-private.h"
#include "pacs-private.h"

typedef GBytes *(*SrEncode) (const CxrSrDoc *, GError **);
typedef GBytes *(*ScEncode) (const CxrPushObject *, const guint8 *, int, int, const CxrSrImage *,
                             guint, const char *, GError **);

GBytes *
cxr__sr_encode (const CxrSrDoc *doc, GError **error)
{
  SrEncode f = (SrEncode) cxr__dcmtk_symbol (NULL, "cxr__sr_encode", error);
  return f ? f (doc, error) : NULL;
}

GBytes *
cxr__sc_encode (const CxrPushObject *object, const guint8 *rgb, int width, int height,
                const CxrSrImage *sources, guint n_sources, const char *derivation, GError **error)
{
  ScEncode f = (ScEncode) cxr__dcmtk_symbol (NULL, "cxr__sc_encode", error);
  return f ? f (object, rgb, width, height, sources, n_sources, derivation, error) : NULL;
}
