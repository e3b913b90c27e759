/* SPDX-License-Identifier: MIT
 *
 * JPEG 2000 (ISO 15444-1) codestreams with OpenJPEG, for the DICOM films
 * Debian's DCMTK cannot decode (transfer syntaxes 1.2.840.10008.1.2.4.90
 * and .91). Only what a chest film is: one component, 1-16 bits, of the
 * size the DICOM header gives; that size is checked from the codestream's
 * header before a sample is decoded (the header's limits were checked
 * before). image-dicom.cc hands the samples back to DCMTK as native pixel
 * data, so the Modality LUT, VOI and MONOCHROME1 rules stay DCMTK's.
 */
#include <string.h>
#include <openjpeg.h>

#include "dicom-private.h"
#include "cxr/error.h"

typedef struct {
  const guint8 *p;
  gsize n, at;
} Source;

static OPJ_SIZE_T
src_read (void *buf, OPJ_SIZE_T want, void *user)
{
  Source *s = user;
  if (s->at >= s->n)
    return (OPJ_SIZE_T) -1;
  gsize k = MIN (want, s->n - s->at);
  memcpy (buf, s->p + s->at, k);
  s->at += k;
  return k;
}

static OPJ_OFF_T
src_skip (OPJ_OFF_T k, void *user)
{
  Source *s = user;
  if (k < 0)
    {
      if ((gsize) -k > s->at)
        return -1;
      s->at -= (gsize) -k;
      return k;
    }
  gsize step = MIN ((gsize) k, s->n - s->at);
  s->at += step;
  return (OPJ_OFF_T) step;
}

static OPJ_BOOL
src_seek (OPJ_OFF_T to, void *user)
{
  Source *s = user;
  if (to < 0 || (guint64) to > s->n)
    return OPJ_FALSE;
  s->at = (gsize) to;
  return OPJ_TRUE;
}

/* OpenJPEG's first error message, kept for ours */
static void
on_error (const char *msg, void *user)
{
  char **first = user;
  if (*first == NULL)
    *first = g_strchomp (g_strdup (msg));
}

static void
quiet (const char *msg, void *user)
{
  (void) msg;
  (void) user;
}

/**
 * cxr__j2k_decode:
 * @data: (array length=len): a J2K codestream or a JP2 file
 * @width, @height: the size it must have
 * @out: (out): its samples, row-major, @width x @height (g_free)
 * @precision: (out): bits per sample, 1-16
 * @is_signed: (out): two's complement samples
 *
 * Returns: %TRUE, or %FALSE with @error saying why it was not read.
 */
gboolean
cxr__j2k_decode (const char *name, const guint8 *data, gsize len, int width, int height,
                 gint32 **out, int *precision, gboolean *is_signed, GError **error)
{
  *out = NULL;
  static const guint8 jp2[] = { 0, 0, 0, 12, 'j', 'P', ' ', ' ' };
  OPJ_CODEC_FORMAT fmt = len >= 8 && memcmp (data, jp2, 8) == 0 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K;
  opj_codec_t *codec = opj_create_decompress (fmt);
  opj_stream_t *stream = opj_stream_default_create (OPJ_TRUE);
  opj_image_t *image = NULL;
  char *why = NULL;
  gboolean ok = FALSE;
  Source src = { data, len, 0 };
  opj_dparameters_t params;
  opj_set_default_decoder_parameters (&params);
  opj_set_error_handler (codec, on_error, &why);
  opj_set_warning_handler (codec, quiet, NULL);
  opj_set_info_handler (codec, quiet, NULL);
  opj_stream_set_user_data (stream, &src, NULL);
  opj_stream_set_user_data_length (stream, len);
  opj_stream_set_read_function (stream, src_read);
  opj_stream_set_skip_function (stream, src_skip);
  opj_stream_set_seek_function (stream, src_seek);
  if (!opj_setup_decoder (codec, &params) || !opj_read_header (stream, codec, &image))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: JPEG 2000: the codestream's header cannot be read (%s)", name,
                   why ? why : "not a JPEG 2000 codestream");
      goto out;
    }
  /* what it is, from its header, before any sample is decoded */
  guint64 w = image->x1 - image->x0, h = image->y1 - image->y0;
  if (image->numcomps != 1)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: JPEG 2000 with %u components: cxrtrack reads one-component (grey) films",
                   name, image->numcomps);
      goto out;
    }
  if (w != (guint64) width || h != (guint64) height || image->comps[0].dx != 1
      || image->comps[0].dy != 1)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: the JPEG 2000 codestream is %llux%llu, the header says %dx%d", name,
                   (unsigned long long) w, (unsigned long long) h, width, height);
      goto out;
    }
  if (image->comps[0].prec < 1 || image->comps[0].prec > 16)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: JPEG 2000 samples of %u bits: cxrtrack reads 1-16", name,
                   image->comps[0].prec);
      goto out;
    }
  if (!opj_decode (codec, stream, image) || !opj_end_decompress (codec, stream)
      || image->comps[0].data == NULL || image->comps[0].w != (OPJ_UINT32) width
      || image->comps[0].h != (OPJ_UINT32) height)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: JPEG 2000: the codestream cannot be decoded (%s)", name,
                   why ? why : "cut short or corrupt");
      goto out;
    }
  *out = g_new (gint32, (gsize) width * height);
  memcpy (*out, image->comps[0].data, sizeof (gint32) * (gsize) width * height);
  *precision = (int) image->comps[0].prec;
  *is_signed = image->comps[0].sgnd != 0;
  ok = TRUE;

out:
  g_free (why);
  if (image)
    opj_image_destroy (image);
  opj_stream_destroy (stream);
  opj_destroy_codec (codec);
  return ok;
}
