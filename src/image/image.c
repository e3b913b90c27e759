/* SPDX-License-Identifier: MIT
 *
 * The image core: a film in memory (gray floats in [0, 1]), reading a film
 * file within the caller's limits, and decoding it through the format
 * table (image-format.c), each format in its own file.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cxr/error.h"
#include "cxr/image.h"
#include "image-private.h"
#include "util-private.h"

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

/**
 * cxr_voi_parse:
 * @text: "first", "none" or "auto" (the --voi option)
 */
gboolean
cxr_voi_parse (const char *text, CxrVoi *voi)
{
  static const char *const names[] = { "first", "none", "auto" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_str_equal (text, names[i]))
      {
        *voi = (CxrVoi) i;
        return TRUE;
      }
  return FALSE;
}

const char *
cxr_voi_name (CxrVoi voi)
{
  switch (voi)
    {
    case CXR_VOI_FIRST: return "first";
    case CXR_VOI_NONE: return "none";
    case CXR_VOI_AUTO: return "auto";
    }
  return "?";
}

/**
 * cxr_image_decode:
 * @name: file name for messages
 * @data: (transfer none): the bytes of a film in one of the formats of
 *   image-format.c (PNG, JPEG, DICOM)
 * @limits: (nullable): size limits, or %NULL for the defaults
 * @info: (out) (optional): what the header says
 * @out: (out) (optional) (transfer full): the film as gray floats; pass
 *   %NULL to validate only
 *
 * Decodes and validates a whole film: the format is the first whose
 * signature the bytes carry. Errors are CXR_ERROR_INVALID_INPUT (no known
 * format, truncated, bad data) or CXR_ERROR_LIMIT (too large), with @name
 * in the message.
 */
gboolean
cxr_image_decode (const char *name, const guint8 *data, gsize len, const CxrImageLimits *limits,
                  CxrImageInfo *info, CxrImage **out, GError **error)
{
  static const CxrImageLimits defaults = CXR_IMAGE_LIMITS_DEFAULT;
  const CxrImageLimits lim = limits ? *limits : defaults;
  if (out)
    *out = NULL;

  if (len == 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "%s: empty file", name);
      return FALSE;
    }
  const CxrImageFormat *f = cxr__image_format_sniff (data, len);
  if (f == NULL)
    {
      g_autofree char *names = cxr__image_format_names ();
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "%s: not a %s file", name, names);
      return FALSE;
    }
  return f->decode (name, data, len, &lim, info, out, error);
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
  goffset size = 0;
  int fd = cxr__open_regular (path, &size, error);
  if (fd < 0)
    return NULL;
  if ((guint64) size > limits->max_file_bytes)
    {
      close (fd);
      g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT,
                   "%s: file of %lld bytes exceeds the limit of %" G_GUINT64_FORMAT " bytes", path,
                   (long long) size, limits->max_file_bytes);
      return NULL;
    }
  gsize n = (gsize) size;
  guint8 *buf = cxr__read_fd (fd, n, path, error);
  if (buf == NULL)
    return NULL;
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
  return cxr_image_load_checked (path, NULL, limits, info, error);
}

/**
 * cxr_image_load_checked:
 * @sha256: (nullable): the SHA-256 (hex) the file had when it was
 *   ingested; %NULL: not checked
 *
 * Reads and decodes a film, first checking that the file is the one that
 * was ingested: a file replaced since is refused (CXR_ERROR_CONFLICT)
 * rather than shown or measured under the old film's name and hash.
 *
 * Returns: (transfer full): the film, or %NULL with @error set.
 */
CxrImage *
cxr_image_load_checked (const char *path, const char *sha256, const CxrImageLimits *limits,
                        CxrImageInfo *info, GError **error)
{
  gsize len = 0;
  g_autofree guint8 *buf = cxr_image_read_file (path, limits, &len, error);
  if (buf == NULL)
    return NULL;
  if (sha256)
    {
      g_autofree char *now = g_compute_checksum_for_data (G_CHECKSUM_SHA256, buf, len);
      if (g_ascii_strcasecmp (now, sha256) != 0)
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_CONFLICT,
                       "%s: changed since it was ingested (sha256 now %.12s..., ingested "
                       "%.12s...): not read; ingest it again as a new film if it is one",
                       path, now, sha256);
          return NULL;
        }
    }
  CxrImage *im = NULL;
  if (!cxr_image_decode (path, buf, len, limits, info, &im, error))
    return NULL;
  return im;
}
