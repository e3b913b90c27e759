/* SPDX-License-Identifier: MIT
 *
 * Internals of the image module shared with other modules.
 */
#pragma once

#include <glib.h>
#include <stdlib.h>

#include "cxr/image.h"

/* PNG's Paeth predictor of a byte from its left (@a), upper (@b) and
 * upper-left (@c) neighbours: a when pa <= pb and pa <= pc, else b when
 * pb <= pc, else c. Chosen by masks, not branches: which neighbour
 * predicts follows the image, so a branch on it is mispredicted about
 * half the time, and in 8-bit gray rows each byte waits on the one
 * before (the reader, image-png.c; the writer, image-png-write.c). */
static inline int
cxr__paeth (int a, int b, int c)
{
  int pa = abs (b - c), pb = abs (a - c), pc = abs (a + b - 2 * c);
  int use_b = -(pb <= pc), bc = (b & use_b) | (c & ~use_b);
  int use_a = -((pa <= pb) & (pa <= pc));
  return (a & use_a) | (bc & ~use_a);
}

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
