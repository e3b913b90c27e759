/* SPDX-License-Identifier: MIT
 *
 * Internals of the image module shared with other modules.
 */
#pragma once

#include <glib.h>

#include "cxr/image.h"

void cxr__resample (const float *src, int w, int h, float *dst, int dw, int dh, double kx,
                    double ky, double csx, double csy, double cdx, double cdy, float *cov);

void cxr__blur (float *img, int w, int h, double sigma, float *tmp);

/* image-jpeg.c */
gboolean cxr__is_jpeg (const guint8 *data, gsize len);
gboolean cxr__jpeg_decode (const char *name, const guint8 *data, gsize len,
                           const CxrImageLimits *limits, CxrImageInfo *info, CxrImage **out,
                           GError **error);
