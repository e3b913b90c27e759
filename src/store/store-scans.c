/* SPDX-License-Identifier: MIT
 *
 * The store's side of ingest: looking up and writing scans, their
 * findings and their patients, in batched transactions.
 *
 * Each batch commits scans, findings and patients together; new rows carry
 * visit = NULL until cxr__scan_writer_finish recomputes visit order and
 * patient counts for every patient that has such rows. A run killed at any
 * point therefore leaves complete batches behind, and the next run
 * finishes the job without duplicates.
 *
 * Visit order: study date (and time, where a DICOM header gives it) where
 * known, else the source's visit number (NIH 'Follow-up #'), else day
 * offset, ties broken by image_index.
 */
#include <string.h>

#include "cxr/error.h"
#include "store-db.h"
#include "store-private.h"

static const char lookup_scan[]
    = "SELECT scan_id, sha256, status, run_id FROM scans WHERE image_index = ?";
static const char insert_patient[]
    = "INSERT INTO patients (patient_id, sex) VALUES (?, ?) ON CONFLICT DO NOTHING";
static const char insert_scan_sql[]
    = "INSERT INTO scans (image_index, patient_id, follow_up, study_date, day_offset, age_years,"
      " sex, view_position, view_kind, finding_labels, orig_width, orig_height,"
      " orig_spacing_x_mm, orig_spacing_y_mm, path, sha256, width, height, bit_depth,"
      " color_type, pixel_spacing_mm, status, error, run_id, study_time)"
      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
static const char update_scan_sql[]
    = "UPDATE scans SET path = ?1, sha256 = ?2, width = ?3, height = ?4, bit_depth = ?5,"
      " color_type = ?6, pixel_spacing_mm = ?7, status = ?8, error = ?9, run_id = ?10,"
      " visit = NULL WHERE scan_id = ?11";
static const char upsert_dicom[]
    = "INSERT OR REPLACE INTO dicom_scans (scan_id, sop_instance_uid, sop_class_uid,"
      " study_instance_uid, series_instance_uid, date_source, study_date, modality, body_part,"
      " image_laterality, manufacturer, photometric, bits_stored, transfer_syntax,"
      " spacing_source, voi) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
static const char insert_finding[]
    = "INSERT OR IGNORE INTO scan_findings (scan_id, finding) VALUES (?, ?)";

struct _CxrScanWriter {
  CxrStore *store;
  gint64 run_id;
  guint batch; /* rows per transaction */
  guint writes_in_batch;
  sqlite3_stmt *lookup, *patient, *insert, *update, *finding, *dicom;
};

void
cxr__scan_record_clear (CxrScanRecord *r)
{
  g_free (r->image_index);
  g_free (r->patient_id);
  g_free (r->study_date);
  g_free (r->view_position);
  g_free (r->sex);
  g_free (r->labels);
  g_free (r->study_time);
  g_free (r->path);
  g_clear_pointer (&r->dicom, cxr__scan_dicom_free);
}

void
cxr__scan_dicom_free (CxrScanDicom *d)
{
  g_free (d->sop_class_uid);
  g_free (d->study_instance_uid);
  g_free (d->series_instance_uid);
  g_free (d->study_date);
  g_free (d->modality);
  g_free (d->body_part);
  g_free (d->laterality);
  g_free (d->manufacturer);
  g_free (d->photometric);
  g_free (d->transfer_syntax);
  g_free (d);
}

static gboolean
write_dicom (CxrScanWriter *w, const CxrScanRecord *r, gint64 scan_id, GError **error)
{
  const CxrScanDicom *d = r->dicom;
  sqlite3_stmt *st = w->dicom;
  int i = 1;
  sqlite3_bind_int64 (st, i++, scan_id);
  sqlite3_bind_text (st, i++, r->image_index, -1, SQLITE_STATIC);
  cxr__bind_text_or_null (st, i++, d->sop_class_uid);
  cxr__bind_text_or_null (st, i++, d->study_instance_uid);
  cxr__bind_text_or_null (st, i++, d->series_instance_uid);
  cxr__bind_text_or_null (st, i++, d->date_source);
  cxr__bind_text_or_null (st, i++, d->study_date);
  cxr__bind_text_or_null (st, i++, d->modality);
  cxr__bind_text_or_null (st, i++, d->body_part);
  cxr__bind_text_or_null (st, i++, d->laterality);
  cxr__bind_text_or_null (st, i++, d->manufacturer);
  cxr__bind_text_or_null (st, i++, d->photometric);
  cxr__bind_int_or_null (st, i++, d->bits_stored);
  cxr__bind_text_or_null (st, i++, d->transfer_syntax);
  cxr__bind_text_or_null (st, i++, d->spacing_source);
  sqlite3_bind_text (st, i++, d->voi, -1, SQLITE_STATIC);
  return cxr__store_step_done (w->store, st, "adding DICOM attributes", error);
}

void
cxr__stored_scan_clear (CxrStoredScan *s)
{
  g_clear_pointer (&s->sha256, g_free);
  g_clear_pointer (&s->status, g_free);
}

void
cxr__scan_writer_free (CxrScanWriter *w)
{
  if (w == NULL)
    return;
  sqlite3_finalize (w->lookup);
  sqlite3_finalize (w->patient);
  sqlite3_finalize (w->insert);
  sqlite3_finalize (w->update);
  sqlite3_finalize (w->finding);
  sqlite3_finalize (w->dicom);
  cxr_store_rollback (w->store);
  g_free (w);
}

/**
 * cxr__scan_writer_new:
 * @batch_rows: rows per transaction; <= 0: 2000
 *
 * Returns: (transfer full): a writer; freeing it rolls back what was not
 * committed.
 */
CxrScanWriter *
cxr__scan_writer_new (CxrStore *store, gint64 run_id, int batch_rows, GError **error)
{
  g_autoptr (CxrScanWriter) w = g_new0 (CxrScanWriter, 1);
  w->store = store;
  w->run_id = run_id;
  w->batch = batch_rows > 0 ? (guint) batch_rows : 2000;
  if (!cxr__store_prepare_all (store, error, &w->lookup, lookup_scan, &w->patient, insert_patient,
                               &w->insert, insert_scan_sql, &w->update, update_scan_sql,
                               &w->finding, insert_finding, &w->dicom, upsert_dicom, NULL))
    return NULL;
  return g_steal_pointer (&w);
}

/**
 * cxr__scan_writer_lookup:
 * The stored scan named @image_index, or scan_id 0 in @out when there is
 * none. Clear @out with cxr__stored_scan_clear().
 */
gboolean
cxr__scan_writer_lookup (CxrScanWriter *w, const char *image_index, CxrStoredScan *out,
                         GError **error)
{
  memset (out, 0, sizeof *out);
  sqlite3_stmt *st = w->lookup;
  sqlite3_bind_text (st, 1, image_index, -1, SQLITE_STATIC);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      out->scan_id = sqlite3_column_int64 (st, 0);
      out->sha256 = g_strdup (cxr__col_text (st, 1));
      out->status = g_strdup (cxr__col_text (st, 2));
      out->run_id = sqlite3_column_int64 (st, 3);
    }
  sqlite3_reset (st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return cxr__store_fail (w->store, error, "looking up scan");
  return TRUE;
}

static gboolean
maybe_commit (CxrScanWriter *w, gboolean force, GError **error)
{
  if (w->writes_in_batch == 0 || (!force && w->writes_in_batch < w->batch))
    return TRUE;
  if (!cxr_store_commit (w->store, error))
    return FALSE;
  w->writes_in_batch = 0;
  return TRUE;
}

static gboolean
ensure_txn (CxrScanWriter *w, GError **error)
{
  if (!sqlite3_get_autocommit (w->store->db))
    return TRUE;
  return cxr_store_begin (w->store, error);
}

static gboolean
update_scan (CxrScanWriter *w, const CxrScanRecord *r, gint64 existing_id, const CxrScanFile *f,
             GError **error)
{
  sqlite3_stmt *st = w->update;
  const CxrImageInfo *info = f->info && f->info->width > 0 ? f->info : NULL;
  cxr__bind_text_or_null (st, 1, r->path);
  cxr__bind_text_or_null (st, 2, f->sha256);
  if (info)
    {
      sqlite3_bind_int64 (st, 3, info->width);
      sqlite3_bind_int64 (st, 4, info->height);
      sqlite3_bind_int (st, 5, info->bit_depth);
      sqlite3_bind_text (st, 6, info->color_type, -1, SQLITE_STATIC);
    }
  cxr__bind_double_or_null (st, 7, f->spacing_mm);
  sqlite3_bind_text (st, 8, f->status, -1, SQLITE_STATIC);
  cxr__bind_text_or_null (st, 9, f->error);
  sqlite3_bind_int64 (st, 10, w->run_id);
  sqlite3_bind_int64 (st, 11, existing_id);
  if (!cxr__store_step_done (w->store, st, "updating scan", error))
    return FALSE;
  return r->dicom == NULL || write_dicom (w, r, existing_id, error);
}

static gboolean
insert_scan (CxrScanWriter *w, const CxrScanRecord *r, const CxrScanFile *f, GError **error)
{
  const CxrImageInfo *info = f->info && f->info->width > 0 ? f->info : NULL;
  sqlite3_stmt *p = w->patient;
  sqlite3_bind_text (p, 1, r->patient_id, -1, SQLITE_STATIC);
  cxr__bind_text_or_null (p, 2, r->sex);
  if (!cxr__store_step_done (w->store, p, "adding patient", error))
    return FALSE;

  sqlite3_stmt *st = w->insert;
  int i = 1;
  sqlite3_bind_text (st, i++, r->image_index, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, i++, r->patient_id, -1, SQLITE_STATIC);
  cxr__bind_int_or_null (st, i++, r->visit);
  cxr__bind_text_or_null (st, i++, r->study_date);
  cxr__bind_double_or_null (st, i++, r->day_offset);
  cxr__bind_double_or_null (st, i++, r->age_years);
  cxr__bind_text_or_null (st, i++, r->sex);
  cxr__bind_text_or_null (st, i++, r->view_position);
  sqlite3_bind_text (st, i++, f->view_kind, -1, SQLITE_STATIC);
  cxr__bind_text_or_null (st, i++, r->labels);
  cxr__bind_int_or_null (st, i++, r->orig_w);
  cxr__bind_int_or_null (st, i++, r->orig_h);
  cxr__bind_double_or_null (st, i++, r->orig_sx);
  cxr__bind_double_or_null (st, i++, r->orig_sy);
  cxr__bind_text_or_null (st, i++, r->path);
  cxr__bind_text_or_null (st, i++, f->sha256);
  if (info)
    {
      sqlite3_bind_int64 (st, i++, info->width);
      sqlite3_bind_int64 (st, i++, info->height);
      sqlite3_bind_int (st, i++, info->bit_depth);
      sqlite3_bind_text (st, i++, info->color_type, -1, SQLITE_STATIC);
    }
  else
    i += 4;
  cxr__bind_double_or_null (st, i++, f->spacing_mm);
  sqlite3_bind_text (st, i++, f->status, -1, SQLITE_STATIC);
  cxr__bind_text_or_null (st, i++, f->error);
  sqlite3_bind_int64 (st, i++, w->run_id);
  cxr__bind_text_or_null (st, i++, r->study_time);
  if (!cxr__store_step_done (w->store, st, "adding scan", error))
    return FALSE;
  gint64 scan_id = sqlite3_last_insert_rowid (w->store->db);
  if (r->dicom && !write_dicom (w, r, scan_id, error))
    return FALSE;

  if (r->labels)
    {
      g_auto (GStrv) parts = g_strsplit (r->labels, "|", -1);
      for (char **name = parts; *name; name++)
        {
          g_strstrip (*name);
          if (**name == '\0')
            continue;
          sqlite3_bind_int64 (w->finding, 1, scan_id);
          sqlite3_bind_text (w->finding, 2, *name, -1, SQLITE_STATIC);
          if (!cxr__store_step_done (w->store, w->finding, "adding finding", error))
            return FALSE;
        }
    }
  return TRUE;
}

/**
 * cxr__scan_writer_add:
 * Stores @r with what its file gave, as a new scan or over the scan
 * @existing_id (then only the file's columns change); commits every
 * batch_rows rows.
 */
gboolean
cxr__scan_writer_add (CxrScanWriter *w, const CxrScanRecord *r, gint64 existing_id,
                      const CxrScanFile *file, GError **error)
{
  if (!ensure_txn (w, error))
    return FALSE;
  gboolean ok = existing_id > 0 ? update_scan (w, r, existing_id, file, error)
                                : insert_scan (w, r, file, error);
  if (!ok)
    return FALSE;
  w->writes_in_batch++;
  return maybe_commit (w, FALSE, error);
}

/**
 * cxr__store_order_visits:
 * Gives visit order and patient counts to every patient with a scan
 * whose visit is NULL (inside the caller's transaction).
 */
gboolean
cxr__store_order_visits (CxrStore *store, GError **error)
{
  static const char sql[]
      = "CREATE TEMP TABLE IF NOT EXISTS dirty (patient_id TEXT PRIMARY KEY) WITHOUT ROWID;"
        "DELETE FROM temp.dirty;"
        "INSERT INTO temp.dirty SELECT DISTINCT patient_id FROM scans WHERE visit IS NULL;"
        "UPDATE scans SET visit = o.v FROM ("
        "  SELECT scan_id, row_number() OVER (PARTITION BY patient_id ORDER BY"
        "    study_date IS NULL, study_date, study_time IS NULL, study_time,"
        "    follow_up IS NULL, follow_up,"
        "    day_offset IS NULL, day_offset, image_index) - 1 AS v"
        "  FROM scans WHERE patient_id IN (SELECT patient_id FROM temp.dirty)) AS o"
        " WHERE scans.scan_id = o.scan_id;"
        "UPDATE patients SET"
        "  n_scans = a.n, n_frontal = a.nf, first_age_years = a.fa, last_age_years = a.la,"
        "  sex = coalesce(a.sex, patients.sex)"
        " FROM (SELECT s.patient_id, count(*) AS n,"
        "   sum(s.status = 'ok' AND s.view_kind IN ('PA', 'AP', 'unknown')) AS nf,"
        "   (SELECT age_years FROM scans f WHERE f.patient_id = s.patient_id"
        "     AND age_years IS NOT NULL ORDER BY visit LIMIT 1) AS fa,"
        "   (SELECT age_years FROM scans l WHERE l.patient_id = s.patient_id"
        "     AND age_years IS NOT NULL ORDER BY visit DESC LIMIT 1) AS la,"
        "   (SELECT sex FROM scans x WHERE x.patient_id = s.patient_id AND sex IS NOT NULL"
        "     GROUP BY sex ORDER BY count(*) DESC, sex LIMIT 1) AS sex"
        "   FROM scans s WHERE s.patient_id IN (SELECT patient_id FROM temp.dirty)"
        "   GROUP BY s.patient_id) AS a"
        " WHERE patients.patient_id = a.patient_id;";
  return cxr_store_exec (store, sql, error);
}

/**
 * cxr__scan_writer_finish:
 * Commits the last batch, then gives visit order and patient counts to
 * every patient with unordered scans, in one transaction.
 */
gboolean
cxr__scan_writer_finish (CxrScanWriter *w, GError **error)
{
  if (!maybe_commit (w, TRUE, error) || !ensure_txn (w, error))
    return FALSE;
  if (!cxr__store_order_visits (w->store, error))
    {
      cxr_store_rollback (w->store);
      return FALSE;
    }
  return cxr_store_commit (w->store, error);
}

/**
 * cxr_store_dicom_voi:
 * @voi: (out): the --voi every DICOM film of the store was ingested with
 * @found: (out) (optional): whether the store has DICOM films
 *
 * An ingest refuses a --voi other than the store's, so there is one.
 */
gboolean
cxr_store_dicom_voi (CxrStore *store, CxrVoi *voi, gboolean *found, GError **error)
{
  *voi = CXR_VOI_FIRST;
  if (found)
    *found = FALSE;
  sqlite3_stmt *st = cxr__store_prepare (
      store, "SELECT voi FROM dicom_scans GROUP BY voi ORDER BY count(*) DESC LIMIT 1", error);
  if (st == NULL)
    return FALSE;
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      cxr_voi_parse ((const char *) sqlite3_column_text (st, 0), voi);
      if (found)
        *found = TRUE;
    }
  sqlite3_finalize (st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return cxr__store_fail (store, error, "reading the DICOM window");
  return TRUE;
}
