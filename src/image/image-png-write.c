/* SPDX-License-Identifier: MIT
 *
 * Writing PNG. libpng reads (it validates untrusted files); writing is
 * done here on libdeflate, which deflates the SUB-filtered overlays about
 * twice as fast as zlib at level 1 and smaller (4.6 vs 10 ms for a
 * 512x512 RGB overlay, 314 vs 325 KB; bench/diff_lesions.py times the
 * whole difference stage). The format is the minimal valid PNG:
 * signature, IHDR, one IDAT, IEND.
 */
#include <libdeflate.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cxr/error.h"
#include "cxr/image.h"
#include "image-private.h"

static void
put_be32 (guint8 *p, guint32 v)
{
  p[0] = (guint8) (v >> 24);
  p[1] = (guint8) (v >> 16);
  p[2] = (guint8) (v >> 8);
  p[3] = (guint8) v;
}

static void
put_chunk (GByteArray *out, const char *type, const guint8 *data, gsize n)
{
  guint8 b[8];
  put_be32 (b, (guint32) n);
  memcpy (b + 4, type, 4);
  g_byte_array_append (out, b, 8);
  if (n)
    g_byte_array_append (out, data, (guint) n);
  guint32 crc = (guint32) libdeflate_crc32 (0, type, 4);
  if (n) /* with a NULL buffer, libdeflate_crc32 returns the initial value */
    crc = (guint32) libdeflate_crc32 (crc, data, n);
  put_be32 (b, crc);
  g_byte_array_append (out, b, 4);
}

/* out[i] = row[i] - prediction (PNG filter @type; @prev NULL on row 0) */
static void
filter_row (int type, const guint8 *row, const guint8 *prev, gsize n, int bpp, guint8 *out)
{
  if (type == 1)
    {
      /* SUB, every row at compression 1 (the maps, the warped film): its
       * own loop, which the compiler vectorises */
      gsize k = MIN ((gsize) bpp, n);
      memcpy (out, row, k);
      for (gsize i = k; i < n; i++)
        out[i] = (guint8) (row[i] - row[i - bpp]);
      return;
    }
  for (gsize i = 0; i < n; i++)
    {
      int a = i >= (gsize) bpp ? row[i - bpp] : 0;
      int b = prev ? prev[i] : 0;
      int c = prev && i >= (gsize) bpp ? prev[i - bpp] : 0;
      int pred = type == 1   ? a
                 : type == 2 ? b
                 : type == 3 ? (a + b) / 2
                 : type == 4 ? cxr__paeth (a, b, c)
                             : 0;
      out[i] = (guint8) (row[i] - pred);
    }
}

/* libpng's heuristic for choosing a row's filter: the sum of the filtered
 * bytes read as signed values, in absolute value. */
static guint64
filtered_cost (const guint8 *f, gsize n)
{
  guint64 sum = 0;
  for (gsize i = 0; i < n; i++)
    sum += f[i] < 128 ? f[i] : 256 - f[i];
  return sum;
}

/**
 * cxr_image_encode_png8:
 * @pixels: width x height x channels bytes (channels 1: gray, 3: RGB)
 * @compression: 0-9 as in zlib (1: fast, SUB filter on every row; 2 and
 *   above: the filter that minimises each row's sum of absolute values,
 *   as libpng chooses)
 *
 * Returns: (transfer full): the PNG file's bytes, or %NULL with @error set.
 */
GBytes *
cxr_image_encode_png8 (const guint8 *pixels, int width, int height, int channels, int compression,
                       GError **error)
{
  g_return_val_if_fail (channels == 1 || channels == 3, NULL);
  gsize stride, raw_n;
  if (width <= 0 || height <= 0 || !g_size_checked_mul (&stride, (gsize) width, (gsize) channels)
      || !g_size_checked_mul (&raw_n, stride + 1, (gsize) height) || raw_n > G_MAXINT32 / 2)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "cannot encode a %dx%d PNG", width,
                   height);
      return NULL;
    }
  g_autofree guint8 *raw = g_malloc (raw_n);
  g_autofree guint8 *trial = compression > 1 ? g_malloc (4 * stride) : NULL;
  for (int y = 0; y < height; y++)
    {
      const guint8 *row = pixels + (gsize) y * stride, *prev = y ? row - stride : NULL;
      guint8 *o = raw + (gsize) y * (stride + 1);
      int best = 1;
      if (compression > 1)
        {
          /* None costs nothing to try: the row itself */
          guint64 best_sum = filtered_cost (row, stride);
          best = 0;
          for (int t = 1; t <= 4; t++)
            {
              guint8 *f = trial + (gsize) (t - 1) * stride;
              filter_row (t, row, prev, stride, channels, f);
              guint64 sum = filtered_cost (f, stride);
              if (sum < best_sum)
                {
                  best_sum = sum;
                  best = t;
                }
            }
          memcpy (o + 1, best ? trial + (gsize) (best - 1) * stride : row, stride);
        }
      else
        filter_row (1, row, prev, stride, channels, o + 1);
      o[0] = (guint8) best;
    }
  struct libdeflate_compressor *c = libdeflate_alloc_compressor (CLAMP (compression, 0, 9));
  gsize cap = c ? libdeflate_zlib_compress_bound (c, raw_n) : 0;
  g_autofree guint8 *z = c ? g_try_malloc (cap) : NULL;
  gsize zn = z ? libdeflate_zlib_compress (c, raw, raw_n, z, cap) : 0;
  if (c)
    libdeflate_free_compressor (c);
  if (zn == 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED, "cannot encode PNG: out of memory");
      return NULL;
    }
  GByteArray *out = g_byte_array_sized_new ((guint) zn + 64);
  static const guint8 sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  g_byte_array_append (out, sig, 8);
  guint8 ihdr[13];
  put_be32 (ihdr, (guint32) width);
  put_be32 (ihdr + 4, (guint32) height);
  ihdr[8] = 8;                        /* bit depth */
  ihdr[9] = channels == 3 ? 2 : 0;    /* colour type: RGB or gray */
  ihdr[10] = ihdr[11] = ihdr[12] = 0; /* deflate, adaptive filtering, no interlace */
  put_chunk (out, "IHDR", ihdr, 13);
  put_chunk (out, "IDAT", z, zn);
  put_chunk (out, "IEND", NULL, 0);
  return g_byte_array_free_to_bytes (out);
}

/**
 * cxr_image_save_png8:
 * Writes 8-bit gray (@channels 1) or RGB (3) pixels to @path.
 */
gboolean
cxr_image_save_png8 (const guint8 *pixels, int width, int height, int channels, const char *path,
                     int compression, GError **error)
{
  g_autoptr (GBytes) b
      = cxr_image_encode_png8 (pixels, width, height, channels, compression, error);
  if (b == NULL)
    return FALSE;
  g_autoptr (GError) err = NULL;
  if (!g_file_set_contents (path, g_bytes_get_data (b, NULL), (gssize) g_bytes_get_size (b), &err))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot write: %s", path, err->message);
      return FALSE;
    }
  return TRUE;
}

/**
 * cxr_image_save_png:
 * Writes @image as 8-bit gray, values clamped to [0, 1].
 */
gboolean
cxr_image_save_png (const CxrImage *image, const char *path, int compression, GError **error)
{
  gsize n = (gsize) image->width * image->height;
  g_autofree guint8 *px = g_malloc (n);
  for (gsize i = 0; i < n; i++)
    {
      float v = image->data[i];
      v = v < 0.f ? 0.f : v > 1.f ? 1.f : v; /* NaN -> 0 */
      px[i] = isnan (v) ? 0 : (guint8) (v * 255.f + 0.5f);
    }
  return cxr_image_save_png8 (px, image->width, image->height, 1, path, compression, error);
}
