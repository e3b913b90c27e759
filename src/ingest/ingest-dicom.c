/* SPDX-License-Identifier: MIT
 *
 * The DICOM source of ingest (cxrtrack ingest --dicom DIR): walks DIR
 * recursively, reads each object's header (not its pixel data) and turns
 * it into a scan record, the way ingest-row.c turns a CSV row into one.
 *
 *   - a film's identity is its SOP Instance UID (scans.image_index): the
 *     same object found twice, in this run or a later one, is one film;
 *   - the patient is Patient ID (0010,0020), with --patient-prefix; an
 *     object without one cannot join a series and is not stored;
 *   - visit order is the film's date and time (acquisition, else content,
 *     else study, else series); a film with none is stored 'invalid' with
 *     that reason, so it is counted but never compared;
 *   - objects that are not films (no pixel data: SR, presentation states,
 *     DICOMDIR), modalities that are not projection radiographs (CT, MR,
 *     ...) and films of another body part are not stored, each reported
 *     with its file and reason; lateral films are stored as lateral;
 *   - pixel spacing comes from Pixel Spacing, else Imager Pixel Spacing
 *     divided by the magnification factor; rows and columns may differ, so
 *     the pixel aspect is kept (orig_* columns: the film is its own
 *     original).
 *
 * The walk itself (name order, one listing in memory, links) is
 * ingest-walk.c's.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "cxr/error.h"
#include "dicom-private.h"
#include "ingest-private.h"
#include "util-private.h"

struct _CxrDicomWalker {
  CxrFileWalker *files;
};

CxrDicomWalker *
cxr__dicom_walker_new (const char *root)
{
  CxrDicomWalker *w = g_new0 (CxrDicomWalker, 1);
  w->files = cxr__file_walker_new (root);
  return w;
}

/* The objects of @paths, in that order (what ingest --dicomweb fetched). */
CxrDicomWalker *
cxr__dicom_walker_new_files (GPtrArray *paths)
{
  CxrDicomWalker *w = g_new0 (CxrDicomWalker, 1);
  w->files = cxr__file_walker_new_files (paths);
  return w;
}

void
cxr__dicom_walker_free (CxrDicomWalker *w)
{
  if (w == NULL)
    return;
  cxr__file_walker_free (w->files);
  g_free (w);
}

static gboolean
is_projection_modality (const char *m)
{
  static const char *const ok[] = { "CR", "DX", "DR", "RG", "DF", "OT", "SC", "PX" };
  if (m == NULL)
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (ok); i++)
    if (g_str_equal (m, ok[i]))
      return TRUE;
  return FALSE;
}

/* Whether Body Part Examined says chest (or says nothing). */
gboolean
cxr__ingest_is_chest (const char *body_part)
{
  if (body_part == NULL)
    return TRUE;
  g_autofree char *u = g_ascii_strup (body_part, -1);
  return strstr (u, "CHEST") || strstr (u, "THORAX") || strstr (u, "LUNG") || strstr (u, "TORSO");
}

/* The record for one object, or FALSE with the reason it is not stored. */
static gboolean
to_record (CxrDicomMeta *m, const char *path, const CxrIngestOptions *opt, CxrScanRecord *r,
           char **why_invalid, char **why_skipped)
{
  memset (r, 0, sizeof *r);
  r->visit = r->orig_w = r->orig_h = -1;
  r->day_offset = r->age_years = r->orig_sx = r->orig_sy = r->spacing = NAN;
  if (!m->has_pixels)
    {
      *why_skipped = g_strdup_printf ("no Pixel Data: not a film (SOP Class %s), not stored",
                                      m->sop_class_uid ? m->sop_class_uid : "not given");
      return FALSE;
    }
  if (m->sop_instance_uid == NULL)
    {
      *why_skipped = g_strdup ("no SOP Instance UID (0008,0018): a film needs one, not stored");
      return FALSE;
    }
  if (m->patient_id == NULL)
    {
      *why_skipped
          = g_strdup ("no Patient ID (0010,0020): cannot be placed in a series, not stored");
      return FALSE;
    }
  if (!is_projection_modality (m->modality))
    {
      *why_skipped
          = g_strdup_printf ("Modality %s: not a projection radiograph, not stored", m->modality);
      return FALSE;
    }
  if (!cxr__ingest_is_chest (m->body_part))
    {
      *why_skipped
          = g_strdup_printf ("Body Part Examined '%s': not a chest film, not stored", m->body_part);
      return FALSE;
    }
  r->image_index = g_strdup (m->sop_instance_uid);
  r->patient_id = opt->patient_prefix ? g_strconcat (opt->patient_prefix, m->patient_id, NULL)
                                      : g_strdup (m->patient_id);
  r->study_date = g_strdup (m->date);
  r->study_time = g_strdup (m->time);
  r->view_position = g_strdup (m->view_position);
  r->sex = g_strdup (m->sex);
  r->age_years = m->age_years;
  r->path = g_strdup (path);
  if (m->rows > 0 && m->columns > 0)
    {
      r->orig_w = m->columns;
      r->orig_h = m->rows;
    }
  r->orig_sx = m->spacing_col_mm;
  r->orig_sy = m->spacing_row_mm;
  r->spacing = m->spacing_col_mm;

  CxrScanDicom *d = g_new0 (CxrScanDicom, 1);
  d->sop_class_uid = g_strdup (m->sop_class_uid);
  d->study_instance_uid = g_strdup (m->study_instance_uid);
  d->series_instance_uid = g_strdup (m->series_instance_uid);
  d->study_date = g_strdup (m->study_date);
  d->modality = g_strdup (m->modality);
  d->body_part = g_strdup (m->body_part);
  d->laterality = g_strdup (m->laterality);
  d->manufacturer = g_strdup (m->manufacturer);
  d->photometric = g_strdup (m->photometric);
  d->transfer_syntax = g_strdup (m->transfer_syntax);
  d->date_source = m->date_source;
  d->spacing_source = m->spacing_source;
  d->voi = cxr_voi_name (opt->limits.voi);
  d->bits_stored = m->bits_stored;
  r->dicom = d;

  if (m->date == NULL)
    *why_invalid = g_strdup_printf ("%s: no Acquisition, Content, Study or Series Date: cannot be "
                                    "placed in visit order, stored invalid",
                                    path);
  return TRUE;
}

/* The record of the object at @path (a CxrFileReader). */
static gboolean
read_object (gpointer data, const char *path, const CxrIngestOptions *opt, CxrScanRecord *r,
             char **why_invalid, char **refused)
{
  (void) data;
  guint8 head[132];
  gsize n = 0;
  FILE *f = g_fopen (path, "rb");
  if (f)
    {
      n = fread (head, 1, sizeof head, f);
      fclose (f);
    }
  if (f == NULL || !cxr__is_dicom (head, n))
    {
      *refused = g_strdup_printf (
          "%s: %s", path, f ? "not a DICOM file, not stored" : "cannot be opened, not stored");
      return FALSE;
    }
  CxrDicomMeta m;
  g_autoptr (GError) err = NULL;
  if (!cxr__dicom_read_header (path, opt->limits.max_file_bytes, &m, &err))
    {
      *refused = g_strdup (err->message);
      return FALSE;
    }
  g_autofree char *skipped = NULL;
  gboolean ok = to_record (&m, path, opt, r, why_invalid, &skipped);
  cxr__dicom_meta_clear (&m);
  if (!ok)
    *refused = g_strdup_printf ("%s: %s", path, skipped);
  return ok;
}

/**
 * cxr__dicom_walker_next:
 * @r: (out): the next object's record
 * @why_invalid: (out): set when the film is to be stored invalid, with why
 *
 * Returns: %FALSE when the walk is over. Objects that are not stored are
 * counted as rows and rejected, and noted with their file and reason.
 */
gboolean
cxr__dicom_walker_next (CxrDicomWalker *w, const CxrIngestOptions *opt, CxrIngestSummary *sum,
                        CxrScanRecord *r, char **why_invalid)
{
  return cxr__file_walker_next_record (w->files, read_object, NULL, opt, sum, r, why_invalid);
}
