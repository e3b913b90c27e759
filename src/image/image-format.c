/* SPDX-License-Identifier: MIT
 *
 * The image formats cxrtrack reads, a row each: its name, the file name
 * suffixes it goes by, how its bytes begin (is_a), how it decodes, and
 * whether a folder of films (ingest --folder) holds it or where else it is
 * read from. cxr_image_decode takes the first row whose signature the
 * bytes carry; ingest asks the same table which files are films. A new
 * format is a row here and its own file (as libvips' loaders carry is_a
 * and suffixes).
 */
#include <string.h>

#include "dicom-private.h"
#include "image-private.h"

static const char *const png_suffixes[] = { ".png", NULL };
static const char *const jpeg_suffixes[] = { ".jpg", ".jpeg", NULL };
static const char *const dicom_suffixes[] = { ".dcm", ".dicom", NULL };

/* a film's bytes match at most one signature, so the order is only that
 * of the messages */
static const CxrImageFormat formats[] = {
  { "PNG", png_suffixes, cxr__is_png, cxr__png_decode, NULL },
  { "JPEG", jpeg_suffixes, cxr__is_jpeg, cxr__jpeg_decode, NULL },
  { "DICOM", dicom_suffixes, cxr__is_dicom, cxr__dicom_decode,
    "ingest --dicom reads a folder of them" },
};

/**
 * cxr__image_format_sniff:
 * @data: the first bytes of a file (132 are enough for every format)
 *
 * Returns: (nullable): the format the bytes begin as, or %NULL.
 */
const CxrImageFormat *
cxr__image_format_sniff (const guint8 *data, gsize len)
{
  for (guint i = 0; i < G_N_ELEMENTS (formats); i++)
    if (formats[i].is_a (data, len))
      return &formats[i];
  return NULL;
}

/* "PNG, JPEG or DICOM": every format's name, for messages. */
char *
cxr__image_format_names (void)
{
  GString *s = g_string_new (NULL);
  guint n = G_N_ELEMENTS (formats);
  for (guint i = 0; i < n; i++)
    {
      if (i > 0)
        g_string_append (s, i + 1 == n ? " or " : ", ");
      g_string_append (s, formats[i].name);
    }
  return g_string_free (s, FALSE);
}
