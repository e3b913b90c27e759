/* SPDX-License-Identifier: MIT
 *
 * What the DICOM code needs on both sides of the module boundary
 * (dicom-load.c): the file-type test and the header record's release.
 * Compiled into libcxr and into cxrtrack-dcmtk alike.
 */
#include <string.h>

#include "dicom-private.h"

gboolean
cxr__is_dicom (const guint8 *d, gsize len)
{
  if (len >= 132 && memcmp (d + 128, "DICM", 4) == 0)
    return TRUE;
  /* a bare data set (no preamble): the first tag's group, little endian */
  return len >= 8 && (d[0] == 0x02 || d[0] == 0x08) && d[1] == 0x00 && d[3] == 0x00;
}

void
cxr__dicom_meta_clear (CxrDicomMeta *m)
{
  g_free (m->sop_instance_uid);
  g_free (m->sop_class_uid);
  g_free (m->study_instance_uid);
  g_free (m->series_instance_uid);
  g_free (m->patient_id);
  g_free (m->date);
  g_free (m->time);
  g_free (m->study_date);
  g_free (m->view_position);
  g_free (m->laterality);
  g_free (m->sex);
  g_free (m->body_part);
  g_free (m->modality);
  g_free (m->manufacturer);
  g_free (m->photometric);
  g_free (m->transfer_syntax);
  memset (m, 0, sizeof *m);
}
