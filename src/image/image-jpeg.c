/* SPDX-License-Identifier: MIT
 *
 * Reading chest films from JPEG with libjpeg-turbo (the libjpeg 6.2 API):
 * baseline and progressive, gray or colour (decoded straight to luminance
 * by the library, as PNG colour is reduced), 8 bits. The EXIF orientation
 * (APP1 tag 0x0112) is honoured, so a film a camera or a viewer stored
 * turned reads upright. The size is checked against the caller's limits
 * from the header, before any pixel memory; a library warning (a truncated
 * file, a corrupt segment, which libjpeg papers over with grey) is an
 * error: a film is read whole or not at all.
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

#include "cxr/error.h"
#include "cxr/image.h"
#include "image-private.h"

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} ErrorMgr;

static void
error_exit (j_common_ptr cinfo)
{
  ErrorMgr *e = (ErrorMgr *) cinfo->err;
  (*cinfo->err->format_message) (cinfo, e->message);
  longjmp (e->jump, 1);
}

/* Warnings (level -1) stop the decode too: libjpeg fills what a truncated
 * or corrupt file lacks with grey and carries on. Trace messages (level
 * >= 0) are ignored. */
static void
emit_message (j_common_ptr cinfo, int level)
{
  if (level < 0)
    error_exit (cinfo);
}

static guint16
get16 (const guint8 *p, gboolean big)
{
  return big ? (guint16) (p[0] << 8 | p[1]) : (guint16) (p[1] << 8 | p[0]);
}

static guint32
get32 (const guint8 *p, gboolean big)
{
  return big ? (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3]
             : (guint32) p[3] << 24 | (guint32) p[2] << 16 | (guint32) p[1] << 8 | p[0];
}

/* The EXIF orientation (1..8) in an APP1 segment, or 1: every offset is
 * checked against the segment's length before it is read. */
static int
exif_orientation (const guint8 *d, guint len)
{
  if (len < 14 || memcmp (d, "Exif\0\0", 6) != 0)
    return 1;
  const guint8 *t = d + 6; /* the TIFF header */
  guint tl = len - 6;
  gboolean big;
  if (memcmp (t, "MM", 2) == 0)
    big = TRUE;
  else if (memcmp (t, "II", 2) == 0)
    big = FALSE;
  else
    return 1;
  guint32 ifd = get32 (t + 4, big);
  if (ifd > tl || tl - ifd < 2)
    return 1;
  guint n = get16 (t + ifd, big);
  for (guint k = 0; k < n; k++)
    {
      guint32 e = ifd + 2 + 12 * k;
      if (e > tl || tl - e < 12)
        return 1;
      if (get16 (t + e, big) == 0x0112 && get16 (t + e + 2, big) == 3)
        {
          guint v = get16 (t + e + 8, big);
          return v >= 1 && v <= 8 ? (int) v : 1;
        }
    }
  return 1;
}

/* @src (w x h, as stored) turned upright for EXIF @orientation. */
static CxrImage *
orient (CxrImage *src, int orientation)
{
  if (orientation == 1)
    return src;
  int w = src->width, h = src->height;
  gboolean swap = orientation >= 5;
  CxrImage *o = cxr_image_new (swap ? h : w, swap ? w : h);
  int ow = o->width, oh = o->height;
  for (int y = 0; y < oh; y++)
    for (int x = 0; x < ow; x++)
      {
        int sx, sy; /* where output (x, y) is in the stored image */
        switch (orientation)
          {
          case 2: sx = w - 1 - x, sy = y; break;         /* mirrored */
          case 3: sx = w - 1 - x, sy = h - 1 - y; break; /* turned 180 */
          case 4: sx = x, sy = h - 1 - y; break;         /* flipped */
          case 5: sx = y, sy = x; break;                 /* transposed */
          case 6: sx = y, sy = h - 1 - x; break;         /* turned 90 clockwise to read */
          case 7: sx = w - 1 - y, sy = h - 1 - x; break; /* transversed */
          default: sx = w - 1 - y, sy = x; break;        /* 8: turned 90 anticlockwise */
          }
        o->data[(gsize) y * ow + x] = src->data[(gsize) sy * w + sx];
      }
  cxr_image_free (src);
  return o;
}

/* Whether @data starts like a JPEG file (SOI and a marker). */
gboolean
cxr__is_jpeg (const guint8 *data, gsize len)
{
  return len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

/* Every resource of one decode, so that a longjmp frees them all. */
typedef struct {
  struct jpeg_decompress_struct cinfo;
  gboolean created;
  guint8 *row;
  CxrImage *image;
} Decode;

static void
decode_clear (Decode *d)
{
  if (d->created)
    jpeg_destroy_decompress (&d->cinfo);
  g_free (d->row);
  cxr_image_free (d->image);
  memset (d, 0, sizeof *d);
}

/**
 * cxr__jpeg_decode:
 * As cxr_image_decode() for a JPEG file (cxr__is_jpeg): @info's bit_depth
 * 8, color_type "gray" or "rgb" (the file's colour space before it is
 * reduced to luminance: "ycbcr" and "cmyk" read as "rgb"), interlaced TRUE
 * for a progressive file; width and height as the film reads (after the
 * EXIF orientation).
 */
gboolean
cxr__jpeg_decode (const char *name, const guint8 *data, gsize len, const CxrImageLimits *lim,
                  CxrImageInfo *info, CxrImage **out, GError **error)
{
  Decode *d = g_new0 (Decode, 1); /* on the heap: intact after longjmp */
  ErrorMgr *em = g_new0 (ErrorMgr, 1);
  d->cinfo.err = jpeg_std_error (&em->pub);
  em->pub.error_exit = error_exit;
  em->pub.emit_message = emit_message;
  if (setjmp (em->jump))
    {
      gboolean limit = g_str_has_prefix (em->message, "LIMIT ");
      g_set_error (error, CXR_ERROR, limit ? CXR_ERROR_LIMIT : CXR_ERROR_INVALID_INPUT, "%s: %s",
                   name, limit ? em->message + 6 : em->message);
      decode_clear (d);
      g_free (d);
      g_free (em);
      return FALSE;
    }
  jpeg_create_decompress (&d->cinfo);
  d->created = TRUE;
  /* no more memory than a film of the largest allowed size needs */
  d->cinfo.mem->max_memory_to_use = 256L << 20;
  jpeg_mem_src (&d->cinfo, data, (unsigned long) len);
  jpeg_save_markers (&d->cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header (&d->cinfo, TRUE);

  int orientation = 1;
  for (jpeg_saved_marker_ptr m = d->cinfo.marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1)
      orientation = exif_orientation (m->data, m->data_length);
  guint32 w = d->cinfo.image_width, h = d->cinfo.image_height;
  gboolean swap = orientation >= 5;
  CxrImageInfo local = { swap ? h : w, swap ? w : h, 8,
                         d->cinfo.jpeg_color_space == JCS_GRAYSCALE ? "gray" : "rgb",
                         jpeg_has_multiple_scans (&d->cinfo) != 0 };
  if (info)
    *info = local;
  if (local.width > lim->max_width || local.height > lim->max_height)
    {
      g_snprintf (em->message, sizeof em->message, "LIMIT %ux%u pixels exceeds the limit %ux%u",
                  (unsigned) local.width, (unsigned) local.height, lim->max_width, lim->max_height);
      longjmp (em->jump, 1);
    }
  d->cinfo.out_color_space = JCS_GRAYSCALE;
  jpeg_start_decompress (&d->cinfo);
  if (d->cinfo.output_components != 1 || d->cinfo.output_width != w || d->cinfo.output_height != h)
    {
      g_strlcpy (em->message, "unsupported pixel layout after conversion", sizeof em->message);
      longjmp (em->jump, 1);
    }
  d->row = g_malloc (w);
  if (out)
    d->image = cxr_image_new ((int) w, (int) h);
  while (d->cinfo.output_scanline < h)
    {
      JSAMPROW rows[1] = { d->row };
      JDIMENSION y = d->cinfo.output_scanline;
      jpeg_read_scanlines (&d->cinfo, rows, 1);
      if (d->image)
        for (guint32 x = 0; x < w; x++)
          d->image->data[(gsize) y * w + x] = d->row[x] * (1.0f / 255.0f);
    }
  jpeg_finish_decompress (&d->cinfo);
  if (out)
    *out = orient (g_steal_pointer (&d->image), orientation);
  decode_clear (d);
  g_free (d);
  g_free (em);
  return TRUE;
}
