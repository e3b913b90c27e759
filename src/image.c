/* SPDX-License-Identifier: MIT
 *
 * PNG films through libpng. Every variant a hospital archive produces is
 * reduced to one gray channel: palette and low bit depths are expanded,
 * colour becomes luminance (libpng's rgb_to_gray with its default Rec. 709
 * weights), alpha and tRNS are dropped, and 16-bit samples keep their
 * precision as floats in [0, 1]. The header is read and its size checked
 * against the caller's limits (with overflow-checked products) before any
 * pixel memory is allocated; the whole stream, IEND and CRCs included, is
 * read so that a truncated or corrupt file is reported, not half-used.
 */
#include <errno.h>
#include <math.h>
#include <libdeflate.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cxr/error.h"
#include "cxr/image.h"
#include "image-private.h"

CxrImage *
cxr_image_new (int width, int height)
{
  g_return_val_if_fail (width > 0 && height > 0, NULL);
  gsize n;
  if (!g_size_checked_mul (&n, (gsize) width, (gsize) height)
      || !g_size_checked_mul (&n, n, sizeof (float)))
    return NULL;
  CxrImage *im = g_new0 (CxrImage, 1);
  im->width = width;
  im->height = height;
  im->data = g_malloc0 (n);
  return im;
}

void
cxr_image_free (CxrImage *im)
{
  if (im == NULL)
    return;
  g_free (im->data);
  g_free (im);
}

typedef struct {
  const char *name;
  const guint8 *data;
  gsize len, pos;
  char message[256]; /* first libpng error, for the GError */
  char warning[160]; /* first libpng warning: says why IHDR was refused */
} Reader;

static void
read_fn (png_structp png, png_bytep out, png_size_t n)
{
  Reader *r = png_get_io_ptr (png);
  if (n > r->len - r->pos)
    {
      g_snprintf (r->message, sizeof r->message,
                  "truncated PNG (file ends at byte %" G_GSIZE_FORMAT ")", r->len);
      png_error (png, r->message);
    }
  memcpy (out, r->data + r->pos, n);
  r->pos += n;
}

static void
error_fn (png_structp png, png_const_charp msg)
{
  Reader *r = png_get_error_ptr (png);
  if (r->message[0] == '\0')
    {
      if (r->warning[0])
        g_snprintf (r->message, sizeof r->message, "%s (%s)", msg, r->warning);
      else
        g_strlcpy (r->message, msg, sizeof r->message);
    }
  png_longjmp (png, 1);
}

static void
warning_fn (png_structp png, png_const_charp msg)
{
  /* Ancillary-chunk CRC errors and the like: libpng recovers; so do we.
   * Kept in case an error follows that it explains. */
  Reader *r = png_get_error_ptr (png);
  if (r->warning[0] == '\0')
    g_strlcpy (r->warning, msg, sizeof r->warning);
}

static const char *
color_type_name (int ct)
{
  switch (ct)
    {
    case PNG_COLOR_TYPE_GRAY: return "gray";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "gray+alpha";
    case PNG_COLOR_TYPE_RGB: return "rgb";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "rgba";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    default: return "unknown";
    }
}

/* State shared with the setjmp block lives in a struct that is not a local
 * modified after setjmp, so longjmp cannot leave it indeterminate. */
typedef struct {
  png_structp png;
  png_infop info;
  guint8 *pixels; /* decoded rows, 1 or 2 bytes per sample */
  png_bytep *rows;
  CxrImage *image;
} DecodeState;

static void
decode_state_clear (DecodeState *s)
{
  png_destroy_read_struct (&s->png, &s->info, NULL);
  g_free (s->pixels);
  g_free (s->rows);
  cxr_image_free (s->image);
}

/**
 * cxr_image_decode:
 * @name: file name for messages
 * @data: (transfer none): the PNG bytes
 * @limits: (nullable): size limits, or %NULL for the defaults
 * @info: (out) (optional): what the header says
 * @out: (out) (optional) (transfer full): the film as gray floats; pass
 *   %NULL to validate only
 *
 * Decodes and validates a whole PNG stream. Errors are CXR_ERROR_INVALID_INPUT
 * (not a PNG, truncated, bad CRC, bad data) or CXR_ERROR_LIMIT (too large),
 * with @name in the message.
 */
gboolean
cxr_image_decode (const char *name, const guint8 *data, gsize len, const CxrImageLimits *limits,
                  CxrImageInfo *info, CxrImage **out, GError **error)
{
  static const CxrImageLimits defaults = CXR_IMAGE_LIMITS_DEFAULT;
  const CxrImageLimits lim = limits ? *limits : defaults; /* not clobbered by longjmp */
  if (out)
    *out = NULL;

  if (len == 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "%s: empty file", name);
      return FALSE;
    }
  if (len < 8 || png_sig_cmp (data, 0, 8) != 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "%s: not a PNG file", name);
      return FALSE;
    }

  Reader reader = { .name = name, .data = data, .len = len };
  DecodeState s = { 0 };
  s.png = png_create_read_struct (PNG_LIBPNG_VER_STRING, &reader, error_fn, warning_fn);
  if (s.png == NULL || (s.info = png_create_info_struct (s.png)) == NULL)
    {
      decode_state_clear (&s);
      g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED, "%s: out of memory", name);
      return FALSE;
    }
  /* Our own limits are checked below with a clearer message; libpng's
   * guard stays as the outer bound for absurd headers. */
  png_set_user_limits (s.png, 1000000, 1000000);
  png_set_chunk_malloc_max (s.png, 64u << 20);

  if (setjmp (png_jmpbuf (s.png)))
    {
      decode_state_clear (&s);
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "%s: %s", name,
                   reader.message[0] ? reader.message : "corrupt PNG");
      return FALSE;
    }

  png_set_read_fn (s.png, &reader, read_fn);
  png_read_info (s.png, s.info);

  png_uint_32 w, h;
  int bit_depth, color_type, interlace;
  png_get_IHDR (s.png, s.info, &w, &h, &bit_depth, &color_type, &interlace, NULL, NULL);
  CxrImageInfo local
      = { w, h, bit_depth, color_type_name (color_type), interlace != PNG_INTERLACE_NONE };
  if (info)
    *info = local;

  if (w > lim.max_width || h > lim.max_height)
    {
      decode_state_clear (&s);
      g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT, "%s: %ux%u pixels exceeds the limit %ux%u",
                   name, (unsigned) w, (unsigned) h, lim.max_width, lim.max_height);
      return FALSE;
    }

  /* Reduce to one gray channel of 8 or 16 bits. */
  if (color_type == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb (s.png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
    png_set_expand_gray_1_2_4_to_8 (s.png);
  if (png_get_valid (s.png, s.info, PNG_INFO_tRNS))
    png_set_tRNS_to_alpha (s.png);
  if (color_type & PNG_COLOR_MASK_ALPHA || png_get_valid (s.png, s.info, PNG_INFO_tRNS))
    png_set_strip_alpha (s.png);
  if (color_type & PNG_COLOR_MASK_COLOR)
    png_set_rgb_to_gray_fixed (s.png, 1, -1, -1);
  if (bit_depth == 16 && G_BYTE_ORDER == G_LITTLE_ENDIAN)
    png_set_swap (s.png);
  int passes = png_set_interlace_handling (s.png);
  png_read_update_info (s.png, s.info);

  gsize rowbytes = png_get_rowbytes (s.png, s.info);
  int channels = png_get_channels (s.png, s.info);
  int out_depth = png_get_bit_depth (s.png, s.info);
  if (channels != 1 || (out_depth != 8 && out_depth != 16)
      || rowbytes != (gsize) w * (out_depth / 8))
    png_error (s.png, "unsupported pixel layout after conversion");

  /* Interlaced images need every row at once; otherwise one row buffer
   * suffices when only validating. */
  gboolean whole = (out != NULL) || passes > 1;
  gsize total;
  if (!g_size_checked_mul (&total, rowbytes, whole ? h : 1))
    png_error (s.png, "image too large");
  s.pixels = g_try_malloc (total);
  if (s.pixels == NULL)
    png_error (s.png, "out of memory for pixels");
  if (whole)
    {
      s.rows = g_new (png_bytep, h);
      for (png_uint_32 y = 0; y < h; y++)
        s.rows[y] = s.pixels + (gsize) y * rowbytes;
      png_read_image (s.png, s.rows);
    }
  else
    {
      for (png_uint_32 y = 0; y < h; y++)
        png_read_row (s.png, s.pixels, NULL);
    }
  png_read_end (s.png, NULL);

  if (out)
    {
      s.image = cxr_image_new ((int) w, (int) h);
      gsize n = (gsize) w * h;
      if (out_depth == 8)
        for (gsize i = 0; i < n; i++)
          s.image->data[i] = s.pixels[i] * (1.0f / 255.0f);
      else
        {
          const guint16 *p = (const guint16 *) s.pixels;
          for (gsize i = 0; i < n; i++)
            s.image->data[i] = p[i] * (1.0f / 65535.0f);
        }
      *out = g_steal_pointer (&s.image);
    }
  decode_state_clear (&s);
  return TRUE;
}

/**
 * cxr_image_read_file:
 * Reads a whole file after checking its size against @limits.
 *
 * Returns: (transfer full): the bytes, or %NULL with @error set.
 */
guint8 *
cxr_image_read_file (const char *path, const CxrImageLimits *limits, gsize *len, GError **error)
{
  static const CxrImageLimits defaults = CXR_IMAGE_LIMITS_DEFAULT;
  if (limits == NULL)
    limits = &defaults;
  FILE *f = fopen (path, "rb");
  if (f == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot open: %s", path, g_strerror (errno));
      return NULL;
    }
  struct stat st;
  if (fstat (fileno (f), &st) != 0 || !S_ISREG (st.st_mode))
    {
      fclose (f);
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: not a regular file", path);
      return NULL;
    }
  if ((guint64) st.st_size > limits->max_file_bytes)
    {
      fclose (f);
      g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT,
                   "%s: file of %lld bytes exceeds the limit of %" G_GUINT64_FORMAT " bytes", path,
                   (long long) st.st_size, limits->max_file_bytes);
      return NULL;
    }
  gsize n = (gsize) st.st_size;
  guint8 *buf = g_try_malloc (MAX (n, 1));
  if (buf == NULL)
    {
      fclose (f);
      g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT, "%s: out of memory", path);
      return NULL;
    }
  gsize got = n ? fread (buf, 1, n, f) : 0;
  int err = ferror (f);
  fclose (f);
  if (got != n || err)
    {
      g_free (buf);
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: read failed", path);
      return NULL;
    }
  *len = n;
  return buf;
}

/**
 * cxr_image_load:
 * Returns: (transfer full): the film at @path as gray floats.
 */
CxrImage *
cxr_image_load (const char *path, const CxrImageLimits *limits, CxrImageInfo *info, GError **error)
{
  gsize len = 0;
  g_autofree guint8 *buf = cxr_image_read_file (path, limits, &len, error);
  if (buf == NULL)
    return NULL;
  CxrImage *im = NULL;
  if (!cxr_image_decode (path, buf, len, limits, info, &im, error))
    return NULL;
  return im;
}

/* --- PNG writing -------------------------------------------------------------
 * libpng reads (it validates untrusted files); writing is done here on
 * libdeflate, which deflates the SUB-filtered overlays about twice as fast
 * as zlib at level 1 and smaller (4.6 vs 10 ms for a 512x512 RGB overlay,
 * 314 vs 325 KB; bench/diff_lesions.py times the whole difference stage).
 * The format is the minimal valid PNG: signature, IHDR, one IDAT, IEND. */

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

static int
paeth (int a, int b, int c)
{
  int p = a + b - c, pa = abs (p - a), pb = abs (p - b), pc = abs (p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* out[i] = row[i] - prediction (PNG filter @type; @prev NULL on row 0) */
static void
filter_row (int type, const guint8 *row, const guint8 *prev, gsize n, int bpp, guint8 *out)
{
  for (gsize i = 0; i < n; i++)
    {
      int a = i >= (gsize) bpp ? row[i - bpp] : 0;
      int b = prev ? prev[i] : 0;
      int c = prev && i >= (gsize) bpp ? prev[i - bpp] : 0;
      int pred = type == 1   ? a
                 : type == 2 ? b
                 : type == 3 ? (a + b) / 2
                 : type == 4 ? paeth (a, b, c)
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

/* 1-D resampling weights: area (box) when shrinking, linear when growing.
 * cov[u] is the fraction of the kernel that fell inside the source. */
typedef struct {
  int *start, *len;
  float *w;
  float *cov;
  int maxlen;
} Kernel;

static void
kernel_make (Kernel *kr, int ns, int nd, double k, double cs, double cd)
{
  double half = k < 1 ? 0.5 / k : 1.0;
  kr->maxlen = (int) ceil (2 * half) + 2;
  kr->start = g_new (int, nd);
  kr->len = g_new (int, nd);
  kr->w = g_new0 (float, (gsize) nd * kr->maxlen);
  kr->cov = g_new (float, nd);
  for (int u = 0; u < nd; u++)
    {
      double x = (u - cd) / k + cs;
      int j0 = (int) floor (x - half + 0.5), j1 = (int) floor (x + half + 0.5);
      double tot = 0, in = 0;
      int s = MAX (j0, 0), e = MIN (j1, ns - 1);
      kr->start[u] = s;
      kr->len[u] = MAX (0, MIN (e - s + 1, kr->maxlen));
      for (int j = j0; j <= j1; j++)
        {
          double w;
          if (k < 1)
            w = MAX (0.0, MIN (j + 0.5, x + half) - MAX (j - 0.5, x - half));
          else
            w = MAX (0.0, 1.0 - fabs (x - j));
          tot += w;
          if (j >= s && j <= e && j - s < kr->maxlen)
            {
              kr->w[(gsize) u * kr->maxlen + (j - s)] = (float) w;
              in += w;
            }
        }
      kr->cov[u] = tot > 0 ? (float) (in / tot) : 0.f;
      if (in > 0)
        for (int t = 0; t < kr->len[u]; t++)
          kr->w[(gsize) u * kr->maxlen + t] /= (float) in;
    }
}

static void
kernel_clear (Kernel *kr)
{
  g_free (kr->start);
  g_free (kr->len);
  g_free (kr->w);
  g_free (kr->cov);
}

/**
 * cxr__resample:
 * Separable resampling: destination pixel (u, v) samples the source at
 * x = (u - cdx) / kx + csx, y = (v - cdy) / ky + csy, with an area (box)
 * filter when shrinking and a linear one when growing. @cov (optional)
 * receives the fraction of each destination pixel's kernel that fell
 * inside the source (1 inside, 0 outside, between at the edges); values
 * are normalised by the covered weight, so edges are not darkened.
 */
void
cxr__resample (const float *src, int w, int h, float *dst, int dw, int dh, double kx, double ky,
               double csx, double csy, double cdx, double cdy, float *cov)
{
  int f = dw > 0 ? w / dw : 0;
  if (f >= 2 && f <= 8 && w == f * dw && h == f * dh && kx == 1.0 / f && ky == 1.0 / f
      && csx == (w - 1) / 2.0 && csy == (h - 1) / 2.0 && cdx == (dw - 1) / 2.0
      && cdy == (dh - 1) / 2.0)
    {
      /* An exact integer shrink, centres aligned: the area filter is the
       * mean of each f x f block (the general kernels below give the same
       * weights, 1/f per tap, at several times the cost). */
      float inv = 1.0f / (float) (f * f);
      float *acc = g_new (float, dw);
      for (int v = 0; v < dh; v++)
        {
          memset (acc, 0, sizeof (float) * dw);
          for (int j = 0; j < f; j++)
            {
              const float *a = src + (gsize) (f * v + j) * w;
              if (f == 2)
                for (int u = 0; u < dw; u++)
                  acc[u] += a[2 * u] + a[2 * u + 1];
              else if (f == 4)
                for (int u = 0; u < dw; u++)
                  acc[u] += (a[4 * u] + a[4 * u + 1]) + (a[4 * u + 2] + a[4 * u + 3]);
              else
                for (int u = 0; u < dw; u++)
                  for (int i = 0; i < f; i++)
                    acc[u] += a[f * u + i];
            }
          float *o = dst + (gsize) v * dw;
          for (int u = 0; u < dw; u++)
            o[u] = acc[u] * inv;
        }
      g_free (acc);
      if (cov)
        for (gsize i = 0; i < (gsize) dw * dh; i++)
          cov[i] = 1.f;
      return;
    }
  Kernel kh, kv;
  kernel_make (&kh, w, dw, kx, csx, cdx);
  kernel_make (&kv, h, dh, ky, csy, cdy);
  float *tmp = g_new (float, (gsize) h * dw);
  for (int y = 0; y < h; y++)
    {
      const float *row = src + (gsize) y * w;
      float *o = tmp + (gsize) y * dw;
      for (int u = 0; u < dw; u++)
        {
          const float *wt = kh.w + (gsize) u * kh.maxlen;
          const float *s = row + kh.start[u];
          float acc = 0;
          for (int t = 0; t < kh.len[u]; t++)
            acc += wt[t] * s[t];
          o[u] = acc;
        }
    }
  for (int v = 0; v < dh; v++)
    {
      float *o = dst + (gsize) v * dw;
      memset (o, 0, sizeof (float) * dw);
      const float *wt = kv.w + (gsize) v * kv.maxlen;
      for (int t = 0; t < kv.len[v]; t++)
        {
          const float *s = tmp + (gsize) (kv.start[v] + t) * dw;
          for (int u = 0; u < dw; u++)
            o[u] += wt[t] * s[u];
        }
      if (cov)
        for (int u = 0; u < dw; u++)
          cov[(gsize) v * dw + u] = kh.cov[u] * kv.cov[v];
    }
  g_free (tmp);
  kernel_clear (&kh);
  kernel_clear (&kv);
}

/**
 * cxr_image_resize:
 * Resamples @image to @width x @height (area filter when shrinking,
 * linear when growing), stretching each axis independently.
 *
 * Returns: (transfer full): the resized image.
 */
CxrImage *
cxr_image_resize (const CxrImage *image, int width, int height)
{
  CxrImage *out = cxr_image_new (width, height);
  double kx = width / (double) image->width, ky = height / (double) image->height;
  cxr__resample (image->data, image->width, image->height, out->data, width, height, kx, ky,
                 (image->width - 1) / 2.0, (image->height - 1) / 2.0, (width - 1) / 2.0,
                 (height - 1) / 2.0, NULL);
  return out;
}

/* One box pass of radius r along each of n rows (src -> dst, edges
 * clamped). A running sum is a chain of dependent adds; four rows at a
 * time keep four independent chains in flight. */
static void
box_rows (const float *src, float *dst, int w, int n, int r, float inv)
{
  int y = 0;
  for (; y + 4 <= n; y += 4)
    {
      const float *s0 = src + (gsize) y * w, *s1 = s0 + w, *s2 = s1 + w, *s3 = s2 + w;
      float *d0 = dst + (gsize) y * w, *d1 = d0 + w, *d2 = d1 + w, *d3 = d2 + w;
      float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (int i = -r; i <= r; i++)
        {
          int c = CLAMP (i, 0, w - 1);
          a0 += s0[c];
          a1 += s1[c];
          a2 += s2[c];
          a3 += s3[c];
        }
      for (int x = 0; x < w; x++)
        {
          int xa = MIN (x + r + 1, w - 1), xs = MAX (x - r, 0);
          d0[x] = a0 * inv;
          d1[x] = a1 * inv;
          d2[x] = a2 * inv;
          d3[x] = a3 * inv;
          a0 += s0[xa] - s0[xs];
          a1 += s1[xa] - s1[xs];
          a2 += s2[xa] - s2[xs];
          a3 += s3[xa] - s3[xs];
        }
    }
  for (; y < n; y++)
    {
      const float *s = src + (gsize) y * w;
      float *d = dst + (gsize) y * w;
      float a = 0;
      for (int i = -r; i <= r; i++)
        a += s[CLAMP (i, 0, w - 1)];
      for (int x = 0; x < w; x++)
        {
          d[x] = a * inv;
          a += s[MIN (x + r + 1, w - 1)] - s[MAX (x - r, 0)];
        }
    }
}

/* One box pass of radius r down the columns (src -> dst), a row at a
 * time with a row of running sums, so it vectorises across x. */
static void
box_cols (const float *src, float *dst, int w, int h, int r, float inv, float *acc)
{
  memset (acc, 0, sizeof (float) * w);
  for (int i = -r; i <= r; i++)
    {
      const float *s = src + (gsize) CLAMP (i, 0, h - 1) * w;
      for (int x = 0; x < w; x++)
        acc[x] += s[x];
    }
  for (int y = 0; y < h; y++)
    {
      float *d = dst + (gsize) y * w;
      const float *add = src + (gsize) MIN (y + r + 1, h - 1) * w;
      const float *sub = src + (gsize) MAX (y - r, 0) * w;
      for (int x = 0; x < w; x++)
        {
          d[x] = acc[x] * inv;
          acc[x] += add[x] - sub[x];
        }
    }
}

/**
 * cxr__blur:
 * @tmp: scratch of w * h floats
 *
 * Gaussian blur of a w x h image in place, approximated by three box
 * filters of radius r with r(r + 1) = sigma^2 (running sums, edges
 * clamped). The three horizontal passes run on four rows at a time in a
 * small buffer that stays in cache; then the three vertical passes.
 */
void
cxr__blur (float *img, int w, int h, double sigma, float *tmp)
{
  int r = MAX (1, (int) lround (sqrt (sigma * sigma + 0.25) - 0.5));
  float inv = 1.0f / (2 * r + 1);
  float *buf = g_new (float, 8 * (gsize) w);
  for (int y = 0; y < h; y += 4)
    {
      int n = MIN (4, h - y);
      box_rows (img + (gsize) y * w, buf, w, n, r, inv);
      box_rows (buf, buf + 4 * (gsize) w, w, n, r, inv);
      box_rows (buf + 4 * (gsize) w, tmp + (gsize) y * w, w, n, r, inv);
    }
  box_cols (tmp, img, w, h, r, inv, buf);
  box_cols (img, tmp, w, h, r, inv, buf);
  box_cols (tmp, img, w, h, r, inv, buf);
  g_free (buf);
}
