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
 *
 * The films an archive mostly holds (gray, 8 or 16 bits, not interlaced:
 * every NIH film) take a shorter road first: the chunks walked and every
 * CRC checked here, the IDAT stream inflated at once by libdeflate (twice
 * zlib's speed) into a buffer of the size the header gives, and the rows
 * unfiltered. Anything else, or anything wrong on the way (a CRC, an
 * unknown critical chunk, a stream of the wrong length), goes to libpng,
 * which decodes it or says what is wrong in its words: so the short road
 * decides nothing on its own but accepts only what libpng accepts, with
 * the same pixels (tests/test_image.c checks every filter type).
 */
#include <libdeflate.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "cxr/error.h"
#include "cxr/image.h"
#include "image-private.h"

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
} DecodeState;

static void
decode_state_clear (DecodeState *s)
{
  png_destroy_read_struct (&s->png, &s->info, NULL);
  g_free (s->pixels);
  g_free (s->rows);
}

gboolean
cxr__is_png (const guint8 *data, gsize len)
{
  return len >= 8 && png_sig_cmp (data, 0, 8) == 0;
}

/* The widest and tallest film either road takes: libpng's own guard for
 * absurd headers (our limits are checked with a clearer message). */
#define PNG_MAX_SIDE 1000000

/* @h rows of @w gray samples of @depth bits (PNG's byte order: big-endian
 * at 16 bits), @stride bytes apart from @rows, as a film in [0, 1]. */
static CxrImage *
samples_to_film (const guint8 *rows, gsize stride, guint32 w, guint32 h, int depth)
{
  CxrImage *im = cxr_image_new ((int) w, (int) h);
  for (guint32 y = 0; y < h; y++)
    {
      const guint8 *row = rows + (gsize) y * stride;
      float *o = im->data + (gsize) y * w;
      if (depth == 8)
        for (guint32 x = 0; x < w; x++)
          o[x] = row[x] * (1.0f / 255.0f);
      else
        for (guint32 x = 0; x < w; x++)
          o[x] = (row[2 * x] << 8 | row[2 * x + 1]) * (1.0f / 65535.0f);
    }
  return im;
}

static guint32
be32 (const guint8 *p)
{
  return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

/* Undoes row @p's filter @f (n bytes, @bpp bytes per pixel) against the
 * row above, @up (zeros for the first row). FALSE for an unknown filter. */
static gboolean
unfilter_row (int f, guint8 *p, const guint8 *up, gsize n, int bpp)
{
  gsize i;
  if (bpp == 1 && n > 0 && (f == 1 || f == 3 || f == 4))
    {
      /* 8-bit gray: each byte depends on the one before; carried in a
       * register, not read back from the row just written (a store to
       * load round trip on every byte of the chain) */
      int a = (guint8) (p[0] + (f == 3 ? up[0] >> 1 : f == 4 ? up[0] : 0));
      p[0] = (guint8) a;
      if (f == 1)
        for (i = 1; i < n; i++)
          p[i] = (guint8) (a = (p[i] + a) & 0xff);
      else if (f == 3)
        for (i = 1; i < n; i++)
          p[i] = (guint8) (a = (p[i] + ((a + up[i]) >> 1)) & 0xff);
      else
        {
          int c = up[0];
          for (i = 1; i < n; i++)
            {
              int b = up[i];
              p[i] = (guint8) (a = (p[i] + cxr__paeth (a, b, c)) & 0xff);
              c = b;
            }
        }
      return TRUE;
    }
  switch (f)
    {
    case 0: return TRUE;
    case 1:
      for (i = bpp; i < n; i++)
        p[i] = (guint8) (p[i] + p[i - bpp]);
      return TRUE;
    case 2:
      for (i = 0; i < n; i++)
        p[i] = (guint8) (p[i] + up[i]);
      return TRUE;
    case 3:
      for (i = 0; i < (gsize) bpp && i < n; i++)
        p[i] = (guint8) (p[i] + (up[i] >> 1));
      for (; i < n; i++)
        p[i] = (guint8) (p[i] + ((p[i - bpp] + up[i]) >> 1));
      return TRUE;
    case 4:
      for (i = 0; i < (gsize) bpp && i < n; i++)
        p[i] = (guint8) (p[i] + up[i]);
      for (; i < n; i++)
        p[i] = (guint8) (p[i] + cxr__paeth (p[i - bpp], up[i], up[i - bpp]));
      return TRUE;
    default: return FALSE;
    }
}

/* The short road (top of this file): TRUE when it decoded the film (or,
 * with @out NULL, found it whole); FALSE, touching nothing of the
 * caller's, when libpng must. The header has been read by the caller's
 * limits check only through here, so the limits are checked here too. */
static gboolean
decode_plain (const guint8 *data, gsize len, const CxrImageLimits *lim, CxrImageInfo *info,
              CxrImage **out)
{
  /* IHDR first, 13 bytes: gray (0), 8 or 16 bits, no interlace */
  if (len < 8 + 25 || be32 (data + 8) != 13 || memcmp (data + 12, "IHDR", 4) != 0)
    return FALSE;
  const guint8 *h = data + 16;
  guint32 w = be32 (h), ht = be32 (h + 4);
  int depth = h[8];
  if (h[9] != 0 || (depth != 8 && depth != 16) || h[10] != 0 || h[11] != 0 || h[12] != 0 || w == 0
      || ht == 0 || w > lim->max_width || ht > lim->max_height || w > PNG_MAX_SIDE
      || ht > PNG_MAX_SIDE)
    return FALSE;
  /* every chunk whole and its CRC right; the IDATs one run; IEND last */
  gsize pos = 8, idat_len = 0, first_idat = 0;
  int idat_runs = 0;
  gboolean in_idat = FALSE, end = FALSE;
  while (!end)
    {
      if (len - pos < 12)
        return FALSE;
      guint32 n = be32 (data + pos);
      if (n > 0x7fffffffu || len - pos - 12 < n)
        return FALSE;
      const guint8 *type = data + pos + 4;
      guint32 crc = (guint32) libdeflate_crc32 (0, type, 4 + (gsize) n);
      if (crc != be32 (data + pos + 8 + n))
        return FALSE;
      gboolean idat = memcmp (type, "IDAT", 4) == 0;
      if (idat && !in_idat)
        {
          idat_runs++;
          if (first_idat == 0)
            first_idat = pos;
        }
      in_idat = idat;
      if (idat)
        idat_len += n;
      else if (memcmp (type, "IEND", 4) == 0)
        end = TRUE;
      else if (!(type[0] & 0x20) && pos != 8)
        return FALSE; /* a critical chunk other than IHDR (PLTE, or unknown) */
      pos += 12 + (gsize) n;
    }
  if (idat_runs != 1 || idat_len == 0)
    return FALSE;
  gsize stride = (gsize) w * (depth / 8), raw_len;
  if (!g_size_checked_mul (&raw_len, stride + 1, ht))
    return FALSE;
  g_autofree guint8 *z = NULL;
  const guint8 *zin = data + first_idat + 8;
  if (idat_len != be32 (data + first_idat))
    {
      /* several IDATs: their payloads joined */
      z = g_try_malloc (idat_len);
      if (z == NULL)
        return FALSE;
      gsize p = first_idat, k = 0;
      while (memcmp (data + p + 4, "IDAT", 4) == 0)
        {
          guint32 n = be32 (data + p);
          memcpy (z + k, data + p + 8, n);
          k += n;
          p += 12 + (gsize) n;
        }
      zin = z;
    }
  g_autofree guint8 *raw = g_try_malloc (raw_len);
  struct libdeflate_decompressor *dd = libdeflate_alloc_decompressor ();
  gsize got = 0;
  gboolean ok
      = raw && dd
        && libdeflate_zlib_decompress (dd, zin, idat_len, raw, raw_len, &got) == LIBDEFLATE_SUCCESS
        && got == raw_len;
  if (dd)
    libdeflate_free_decompressor (dd);
  if (!ok)
    return FALSE;
  int bpp = depth / 8;
  g_autofree guint8 *zero = g_malloc0 (stride);
  for (guint32 y = 0; y < ht; y++)
    {
      guint8 *row = raw + (gsize) y * (stride + 1);
      const guint8 *up = y ? row - stride : zero;
      if (!unfilter_row (row[0], row + 1, up, stride, bpp))
        return FALSE;
    }
  if (info)
    *info = (CxrImageInfo){ w, ht, depth, color_type_name (PNG_COLOR_TYPE_GRAY), FALSE };
  if (out)
    *out = samples_to_film (raw + 1, stride + 1, w, ht, depth);
  return TRUE;
}

/* A PNG film (a CxrImageFormat's decode; @lim: the caller's limits, not
 * clobbered by longjmp: the caller's copy). */
gboolean
cxr__png_decode (const char *name, const guint8 *data, gsize len, const CxrImageLimits *limits,
                 CxrImageInfo *info, CxrImage **out, GError **error)
{
  if (cxr__is_png (data, len) && decode_plain (data, len, limits, info, out))
    return TRUE;
  const CxrImageLimits lim = *limits;
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
  png_set_user_limits (s.png, PNG_MAX_SIDE, PNG_MAX_SIDE);
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
    *out = samples_to_film (s.pixels, rowbytes, w, h, out_depth);
  decode_state_clear (&s);
  return TRUE;
}
