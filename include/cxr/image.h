/* SPDX-License-Identifier: MIT
 *
 * Reading chest films from PNG with libpng: 1-16 bit gray, gray+alpha,
 * RGB, RGBA and palette, interlaced or not. Colour is reduced to luminance
 * (Rec. 709 weights, libpng's rgb_to_gray), alpha is dropped. And from
 * JPEG with libjpeg-turbo (image-jpeg.c: 8-bit gray or colour, baseline or
 * progressive, EXIF orientation honoured), and from DICOM with DCMTK
 * (image-dicom.cc: Modality LUT, VOI, MONOCHROME1 inverted, the transfer
 * syntaxes chest films use), chosen by the file's first bytes. Sizes are
 * checked against caller-set limits before anything is allocated.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Which VOI (window) a DICOM film is read with; PNG and JPEG ignore it. */
typedef enum {
  CXR_VOI_FIRST, /* the first Window Center / Width, else the first VOI LUT,
                  * else the whole range the stored bits can hold */
  CXR_VOI_NONE,  /* the whole range the stored bits can hold, after the
                  * Modality LUT, linearly */
  CXR_VOI_AUTO,  /* the film's own minimum to maximum, padding left out */
} CxrVoi;

/* How films are read: size limits, and the DICOM window. */
typedef struct {
  guint32 max_width;      /* px; default 8192 */
  guint32 max_height;     /* px; default 8192 */
  guint64 max_file_bytes; /* default 512 MiB */
  CxrVoi voi;             /* DICOM only; default CXR_VOI_FIRST */
} CxrImageLimits;

#define CXR_IMAGE_LIMITS_DEFAULT                                                                   \
  {                                                                                                \
    8192, 8192, (guint64) 512 << 20, CXR_VOI_FIRST                                                 \
  }

gboolean cxr_voi_parse (const char *text, CxrVoi *voi);
const char *cxr_voi_name (CxrVoi voi);

typedef struct {
  guint32 width;          /* px */
  guint32 height;         /* px */
  int bit_depth;          /* PNG IHDR bit depth: 1, 2, 4, 8 or 16; JPEG 8;
                           * DICOM Bits Stored */
  const char *color_type; /* "gray", "gray+alpha", "rgb", "rgba", "palette" */
  gboolean interlaced;
} CxrImageInfo;

/* A single-channel float image, row-major, values in [0, 1]. */
typedef struct {
  int width;   /* px */
  int height;  /* px */
  float *data; /* width * height floats */
} CxrImage;

CxrImage *cxr_image_new (int width, int height);
void cxr_image_free (CxrImage *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrImage, cxr_image_free)

gboolean cxr_image_decode (const char *name, const guint8 *data, gsize len,
                           const CxrImageLimits *limits, CxrImageInfo *info, CxrImage **out,
                           GError **error);
CxrImage *cxr_image_load (const char *path, const CxrImageLimits *limits, CxrImageInfo *info,
                          GError **error);
CxrImage *cxr_image_load_checked (const char *path, const char *sha256,
                                  const CxrImageLimits *limits, CxrImageInfo *info, GError **error);
guint8 *cxr_image_read_file (const char *path, const CxrImageLimits *limits, gsize *len,
                             GError **error);
CxrImage *cxr_image_resize (const CxrImage *image, int width, int height);
CxrImage *cxr_image_rotate_180 (const CxrImage *image);
gboolean cxr_image_save_png (const CxrImage *image, const char *path, int compression,
                             GError **error);
GBytes *cxr_image_encode_png8 (const guint8 *pixels, int width, int height, int channels,
                               int compression, GError **error);
gboolean cxr_image_save_png8 (const guint8 *pixels, int width, int height, int channels,
                              const char *path, int compression, GError **error);

G_END_DECLS
