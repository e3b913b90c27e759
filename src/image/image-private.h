/* SPDX-License-Identifier: MIT
 *
 * Internals of the image module shared with other modules.
 */
#pragma once

#include <glib.h>

#include "cxr/image.h"

void cxr__resample (const float *src, int w, int h, float *dst, int dw, int dh, double kx,
                    double ky, double csx, double csy, double cdx, double cdy, float *cov);

void cxr__resample_mask (const guint8 *mask, int w, int h, float *dst, int dw, int dh, double kx,
                         double ky, double csx, double csy, double cdx, double cdy, float *cov);

void cxr__blur (float *img, int w, int h, double sigma, float *tmp);

/* A format of the table in image-format.c. */
typedef struct {
  const char *name;            /* "PNG" */
  const char *const *suffixes; /* ".png", NULL-terminated */
  gboolean (*is_a) (const guint8 *data, gsize len);
  gboolean (*decode) (const char *name, const guint8 *data, gsize len, const CxrImageLimits *limits,
                      CxrImageInfo *info, CxrImage **out, GError **error);
  const char *elsewhere; /* not a film of a PNG/JPEG folder: where it is read
                                     * from instead; NULL: it is one */
} CxrImageFormat;

const CxrImageFormat *cxr__image_format_sniff (const guint8 *data, gsize len);
char *cxr__image_format_names (void);

/* image-png.c */
gboolean cxr__is_png (const guint8 *data, gsize len);
gboolean cxr__png_decode (const char *name, const guint8 *data, gsize len,
                          const CxrImageLimits *limits, CxrImageInfo *info, CxrImage **out,
                          GError **error);

/* image-jpeg.c */
gboolean cxr__is_jpeg (const guint8 *data, gsize len);
gboolean cxr__jpeg_decode (const char *name, const guint8 *data, gsize len,
                           const CxrImageLimits *limits, CxrImageInfo *info, CxrImage **out,
                           GError **error);
