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
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
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
  char message[256];   /* first libpng error, for the GError */
  char warning[160];   /* first libpng warning: says why IHDR was refused */
} Reader;

static void
read_fn (png_structp png, png_bytep out, png_size_t n)
{
  Reader *r = png_get_io_ptr (png);
  if (n > r->len - r->pos)
    {
      g_snprintf (r->message, sizeof r->message, "truncated PNG (file ends at byte %" G_GSIZE_FORMAT ")",
                  r->len);
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
  guint8 *pixels;        /* decoded rows, 1 or 2 bytes per sample */
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
  CxrImageInfo local = { w, h, bit_depth, color_type_name (color_type),
                         interlace != PNG_INTERLACE_NONE };
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
  if (channels != 1 || (out_depth != 8 && out_depth != 16) || rowbytes != (gsize) w * (out_depth / 8))
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

static void
write_fn (png_structp png, png_bytep data, png_size_t n)
{
  g_byte_array_append (png_get_io_ptr (png), data, (guint) n);
}

static void
flush_fn (png_structp png)
{
}

/**
 * cxr_image_encode_png8:
 * @pixels: width x height x channels bytes (channels 1: gray, 3: RGB)
 * @compression: zlib level 0-9; 1 is several times faster than the default 6
 *
 * Returns: (transfer full): the PNG file's bytes, or %NULL with @error set.
 */
GBytes *
cxr_image_encode_png8 (const guint8 *pixels, int width, int height, int channels, int compression,
                       GError **error)
{
  g_return_val_if_fail (channels == 1 || channels == 3, NULL);
  Reader ctx = { .name = "PNG" };
  GByteArray *volatile buf = g_byte_array_new ();
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, &ctx, error_fn, warning_fn);
  png_infop info = png ? png_create_info_struct (png) : NULL;
  if (info == NULL || setjmp (png_jmpbuf (png)))
    {
      png_destroy_write_struct (&png, &info);
      g_byte_array_unref (buf);
      g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED, "cannot encode PNG: %s",
                   ctx.message[0] ? ctx.message : "out of memory");
      return NULL;
    }
  png_set_write_fn (png, buf, write_fn, flush_fn);
  png_set_compression_level (png, CLAMP (compression, 0, 9));
  png_set_filter (png, 0, compression <= 1 ? PNG_FILTER_SUB : PNG_ALL_FILTERS);
  png_set_IHDR (png, info, (png_uint_32) width, (png_uint_32) height, 8,
                channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info (png, info);
  for (int y = 0; y < height; y++)
    png_write_row (png, (png_const_bytep) pixels + (gsize) y * width * channels);
  png_write_end (png, NULL);
  png_destroy_write_struct (&png, &info);
  return g_byte_array_free_to_bytes (buf);
}

/**
 * cxr_image_save_png8:
 * Writes 8-bit gray (@channels 1) or RGB (3) pixels to @path.
 */
gboolean
cxr_image_save_png8 (const guint8 *pixels, int width, int height, int channels, const char *path,
                     int compression, GError **error)
{
  g_autoptr (GBytes) b = cxr_image_encode_png8 (pixels, width, height, channels, compression, error);
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

/**
 * cxr__blur:
 * @tmp: scratch of w * h floats
 *
 * Gaussian blur of a w x h image in place, approximated by three box
 * filters of radius r with r(r + 1) = sigma^2 (running sums, edges
 * clamped); the column pass runs a row at a time for cache locality.
 */
void
cxr__blur (float *img, int w, int h, double sigma, float *tmp)
{
  int r = MAX (1, (int) lround (sqrt (sigma * sigma + 0.25) - 0.5));
  float inv = 1.0f / (2 * r + 1);
  float *acc = g_new (float, w);
  for (int pass = 0; pass < 3; pass++)
    {
      for (int y = 0; y < h; y++)
        {
          const float *s = img + (gsize) y * w;
          float *d = tmp + (gsize) y * w;
          float a = 0;
          for (int i = -r; i <= r; i++)
            a += s[CLAMP (i, 0, w - 1)];
          for (int x = 0; x < w; x++)
            {
              d[x] = a * inv;
              a += s[MIN (x + r + 1, w - 1)] - s[MAX (x - r, 0)];
            }
        }
      memset (acc, 0, sizeof (float) * w);
      for (int i = -r; i <= r; i++)
        {
          const float *s = tmp + (gsize) CLAMP (i, 0, h - 1) * w;
          for (int x = 0; x < w; x++)
            acc[x] += s[x];
        }
      for (int y = 0; y < h; y++)
        {
          float *d = img + (gsize) y * w;
          const float *add = tmp + (gsize) MIN (y + r + 1, h - 1) * w;
          const float *sub = tmp + (gsize) MAX (y - r, 0) * w;
          for (int x = 0; x < w; x++)
            {
              d[x] = acc[x] * inv;
              acc[x] += add[x] - sub[x];
            }
        }
    }
  g_free (acc);
}
