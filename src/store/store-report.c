/* SPDX-License-Identifier: MIT
 *
 * The store's side of the reports: one patient's row, films, pairs and
 * flags, the model with results for them, and the cohort index's rows.
 */
#include <string.h>

#include "cxr/error.h"
#include "store-db.h"
#include "store-private.h"

void
cxr__report_film_clear (gpointer film)
{
  CxrReportFilm *f = film;
  g_free (f->image_index);
  g_free (f->view_kind);
  g_free (f->view_position);
  g_free (f->status);
  g_free (f->error);
  g_free (f->path);
  g_free (f->labels);
  g_free (f->sha256);
  g_free (f->lung_mask_path);
  g_free (f->severity_status);
  g_free (f->study_date);
}

void
cxr__report_pair_clear (gpointer pair)
{
  CxrReportPair *p = pair;
  g_free (p->kind);
  g_free (p->status);
  g_free (p->reason);
  g_free (p->overlay_path);
  g_free (p->prob_finding);
  g_clear_pointer (&p->beyond, g_array_unref);
}

static void
delta_clear (gpointer delta)
{
  g_free (((CxrReportDelta *) delta)->finding);
}

void
cxr__index_row_clear (gpointer row)
{
  CxrIndexRow *r = row;
  g_free (r->patient_id);
  g_free (r->strongest);
  g_free (r->signals);
}

void
cxr__finding_count_clear (gpointer row)
{
  g_free (((CxrFindingCount *) row)->finding);
}

/**
 * cxr__store_patient:
 * A patient's row; %FALSE with @error set when there is none.
 */
gboolean
cxr__store_patient (CxrStore *store, const char *pid, CxrPatientRow *out, GError **error)
{
  memset (out, 0, sizeof *out);
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT sex, n_scans, n_frontal, first_age_years, last_age_years FROM patients"
      " WHERE patient_id = ?",
      error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, pid, -1, SQLITE_STATIC);
  gboolean found = sqlite3_step (st) == SQLITE_ROW;
  if (found)
    {
      out->sex = g_strdup (cxr__col_text (st, 0));
      out->n_scans = sqlite3_column_int (st, 1);
      out->n_frontal = sqlite3_column_int (st, 2);
      out->first_age = cxr__col_double (st, 3);
      out->last_age = cxr__col_double (st, 4);
    }
  else
    g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "%s: no patient '%s'", store->path,
                 pid);
  sqlite3_finalize (st);
  return found;
}

/**
 * cxr__store_patient_films:
 * Returns: (transfer full) (element-type CxrReportFilm): every film of the
 * patient, any status or view, by visit.
 */
GArray *
cxr__store_patient_films (CxrStore *store, const char *pid, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT scan_id, image_index, view_kind, view_position, status, error, path, finding_labels,"
      " sha256, visit, coalesce(julianday(study_date), day_offset), age_years,"
      " (SELECT mask_path FROM lung_fields l WHERE l.scan_id = s.scan_id AND l.status = 'ok'"
      "   ORDER BY model_id DESC LIMIT 1), orientation = 'upside_down', study_date"
      " FROM scans s WHERE patient_id = ? ORDER BY visit",
      error);
  if (st == NULL)
    return NULL;
  GArray *films = g_array_new (FALSE, TRUE, sizeof (CxrReportFilm));
  g_array_set_clear_func (films, cxr__report_film_clear);
  sqlite3_bind_text (st, 1, pid, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      CxrReportFilm f = { sqlite3_column_int64 (st, 0) };
      char **text[] = { &f.image_index, &f.view_kind, &f.view_position, &f.status,
                        &f.error,       &f.path,      &f.labels,        &f.sha256 };
      for (guint k = 0; k < G_N_ELEMENTS (text); k++)
        *text[k] = g_strdup (cxr__col_text (st, (int) k + 1));
      f.visit = sqlite3_column_int (st, 9);
      f.day = cxr__col_double (st, 10);
      f.age = cxr__col_double (st, 11);
      f.lung_mask_path = g_strdup (cxr__col_text (st, 12));
      f.upside_down = sqlite3_column_int (st, 13);
      f.study_date = g_strdup (cxr__col_text (st, 14));
      g_array_append_val (films, f);
    }
  sqlite3_finalize (st);
  return films;
}

/**
 * cxr__store_film_severity:
 * Fills each of @films (CxrReportFilm) with its Brixia score by the
 * latest zone-score head; films without one keep severity_status NULL, as
 * do all films of a store older than the scores (opened read-only, not
 * migrated).
 */
gboolean
cxr__store_film_severity (CxrStore *store, GArray *films, GError **error)
{
  if (cxr_store_schema_version (store) < 20)
    return TRUE;
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT status, global, A, B, C, D, E, F FROM scan_severity WHERE scan_id = ?"
      " ORDER BY model_id DESC LIMIT 1",
      error);
  if (st == NULL)
    return FALSE;
  for (guint i = 0; i < films->len; i++)
    {
      CxrReportFilm *f = &g_array_index (films, CxrReportFilm, i);
      sqlite3_bind_int64 (st, 1, f->scan_id);
      if (sqlite3_step (st) == SQLITE_ROW)
        {
          f->severity_status = g_strdup (cxr__col_text (st, 0));
          f->severity_global = sqlite3_column_double (st, 1);
          for (int z = 0; z < 6; z++)
            f->zone_score[z] = sqlite3_column_double (st, 2 + z);
        }
      sqlite3_reset (st);
    }
  sqlite3_finalize (st);
  return TRUE;
}

/**
 * cxr__store_patient_model:
 * The latest model with results for the patient, its name and sha256.
 *
 * Returns: its model_id, 0 when there is none, or -1 with @error set.
 */
gint64
cxr__store_patient_model (CxrStore *store, const char *pid, char **name, char **sha256,
                          GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT m.model_id, m.name, m.sha256 FROM models m WHERE EXISTS (SELECT 1 FROM embeddings e"
      " JOIN scans s USING (scan_id) WHERE e.model_id = m.model_id AND s.patient_id = ?)"
      " ORDER BY m.model_id DESC LIMIT 1",
      error);
  gint64 id = 0;
  if (st == NULL)
    return -1;
  sqlite3_bind_text (st, 1, pid, -1, SQLITE_STATIC);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      id = sqlite3_column_int64 (st, 0);
      *name = g_strdup (cxr__col_text (st, 1));
      *sha256 = g_strdup (cxr__col_text (st, 2));
    }
  else if (rc != SQLITE_DONE)
    id = -1;
  sqlite3_finalize (st);
  if (id < 0)
    cxr__store_fail (store, error, "reading the patient's model");
  return id;
}

/* byte order, as SQLite's BINARY collation */
static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/**
 * cxr__store_model_findings:
 * Returns: (transfer full) (element-type utf8): the findings a model
 * scores, in name order (from its row, not a scan of its predictions), or
 * %NULL with @error set.
 */
GPtrArray *
cxr__store_model_findings (CxrStore *store, gint64 model_id, GError **error)
{
  sqlite3_stmt *st
      = cxr__store_prepare (store, "SELECT classes FROM models WHERE model_id = ?", error);
  if (st == NULL)
    return NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  sqlite3_bind_int64 (st, 1, model_id);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW && cxr__col_text (st, 0))
    {
      g_auto (GStrv) parts = g_strsplit (cxr__col_text (st, 0), "|", -1);
      for (char **p = parts; *p; p++)
        if (**p)
          g_ptr_array_add (out, g_strdup (*p));
    }
  sqlite3_finalize (st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    {
      cxr__store_fail (store, error, "reading the model's findings");
      return NULL;
    }
  g_ptr_array_sort (out, compare_names);
  return g_steal_pointer (&out);
}

/**
 * cxr__store_patient_pairs:
 * @model_id: the model whose probability change to read (0: none)
 *
 * Returns: (transfer full) (element-type CxrReportPair): the patient's
 * registrations with their change measures, by visit, previous first, or
 * %NULL with @error set.
 */
GArray *
cxr__store_patient_pairs (CxrStore *store, const char *pid, gint64 model_id, GError **error)
{
  g_autoptr (GArray) pairs = g_array_new (FALSE, TRUE, sizeof (CxrReportPair));
  g_array_set_clear_func (pairs, cxr__report_pair_clear);
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT r.fixed_scan_id, r.moving_scan_id, r.kind, r.dx_px, r.dy_px, r.angle_deg, r.scale,"
      " r.confidence, r.status, r.reason, r.cross_view, c.change_score, c.changed_area_mm2,"
      " coalesce(c.overlay_path, c.map_path), r.fixed_aspect, r.moving_aspect, r.deform_nx,"
      " r.deform_ny, r.deform_field, CASE WHEN c.overlay_path IS NULL THEN c.map_scale END,"
      " c.threshold, c.mask_kind = 'lungs'"
      " FROM registrations r JOIN scans m ON m.scan_id = r.moving_scan_id"
      " LEFT JOIN pair_changes c USING (fixed_scan_id, moving_scan_id, kind)"
      " WHERE m.patient_id = ? ORDER BY m.visit, r.kind DESC",
      error);
  /* each pair's findings in their limits (pair_probability_deltas), one
   * pair at a time: with its key bound SQLite searches the view's tables
   * by primary key; joined to the pairs, it would build the view over the
   * whole store for every page. The largest row is the pair's row of
   * pair_probability_change, the rows beyond 1 the findings beyond their
   * limits, rises first. */
  sqlite3_stmt *bd = cxr__store_prepare (
      store,
      "SELECT finding, delta, in_limits FROM pair_probability_deltas"
      " WHERE fixed_scan_id = ? AND moving_scan_id = ? AND kind = ? AND model_id = ?"
      " ORDER BY delta < 0, in_limits DESC",
      st ? error : NULL);
  if (st == NULL || bd == NULL)
    {
      sqlite3_finalize (st);
      sqlite3_finalize (bd);
      return NULL;
    }
  sqlite3_bind_text (st, 1, pid, -1, SQLITE_STATIC);
  int rc, rd = SQLITE_DONE;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      CxrReportPair p = { sqlite3_column_int64 (st, 0), sqlite3_column_int64 (st, 1) };
      p.kind = g_strdup (cxr__col_text (st, 2));
      p.reg.dx_px = sqlite3_column_double (st, 3);
      p.reg.dy_px = sqlite3_column_double (st, 4);
      p.reg.angle_deg = sqlite3_column_double (st, 5);
      p.reg.scale = sqlite3_column_double (st, 6);
      p.confidence = cxr__col_double (st, 7);
      p.status = g_strdup (cxr__col_text (st, 8));
      p.reason = g_strdup (cxr__col_text (st, 9));
      p.cross_view = sqlite3_column_int (st, 10);
      p.change_score = cxr__col_double (st, 11);
      p.changed_area_mm2 = cxr__col_double (st, 12);
      p.overlay_path = g_strdup (cxr__col_text (st, 13));
      p.reg.fixed_aspect = sqlite3_column_double (st, 14); /* NULL (square) reads 0 */
      p.reg.moving_aspect = sqlite3_column_double (st, 15);
      cxr__col_deform_field (st, 16, &p.reg.field);
      p.reg.deformable = p.reg.field.nx > 0;
      p.map_scale = cxr__col_double (st, 19);
      p.threshold = cxr__col_double (st, 20);
      p.outline = sqlite3_column_int (st, 21);
      p.prob_delta = p.prob_change_limits = NAN;
      p.beyond = g_array_new (FALSE, FALSE, sizeof (CxrReportDelta));
      g_array_set_clear_func (p.beyond, delta_clear);
      sqlite3_bind_int64 (bd, 1, p.fixed_id);
      sqlite3_bind_int64 (bd, 2, p.moving_id);
      sqlite3_bind_text (bd, 3, p.kind, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (bd, 4, model_id);
      while ((rd = sqlite3_step (bd)) == SQLITE_ROW)
        {
          const char *finding = cxr__col_text (bd, 0);
          double delta = cxr__col_double (bd, 1), in_limits = cxr__col_double (bd, 2);
          if (p.prob_finding == NULL || in_limits > p.prob_change_limits)
            {
              g_free (p.prob_finding);
              p.prob_finding = g_strdup (finding);
              p.prob_delta = delta;
              p.prob_change_limits = in_limits;
            }
          if (in_limits > 1)
            {
              CxrReportDelta dl = { g_strdup (finding), delta, in_limits };
              g_array_append_val (p.beyond, dl);
            }
        }
      sqlite3_reset (bd);
      g_array_append_val (pairs, p);
      if (rd != SQLITE_DONE)
        break;
    }
  gboolean ok = rc == SQLITE_DONE && rd == SQLITE_DONE;
  sqlite3_finalize (st);
  sqlite3_finalize (bd);
  if (!ok)
    {
      cxr__store_fail (store, error, "reading the patient's registrations");
      return NULL;
    }
  return g_steal_pointer (&pairs);
}

static CxrTrendKind
trend_kind_of (const char *name)
{
  for (int k = CXR_TREND_INSUFFICIENT_VISITS; k <= CXR_TREND_UNCONFIRMED_CHANGE; k++)
    if (g_str_equal (name, cxr_trend_kind_name ((CxrTrendKind) k)))
      return (CxrTrendKind) k;
  return CXR_TREND_STABLE;
}

/**
 * cxr__store_patient_flags:
 * Returns: (transfer full) (element-type CxrFlagRow): the patient's
 * flags that say something (slow_progression, acute_change,
 * unconfirmed_change, improving),
 * worsening first, by p-value. Only the signal, view kind, kind,
 * evidence, visits and p-value are set. %NULL with @error set when the
 * store cannot be read.
 */
GArray *
cxr__store_patient_flags (CxrStore *store, const char *pid, GError **error)
{
  g_autoptr (GArray) flags = g_array_new (FALSE, TRUE, sizeof (CxrFlagRow));
  g_array_set_clear_func (flags, cxr__flag_row_clear);
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT signal, view_kind, kind, evidence, event_visit, first_visit, last_visit, p_value,"
      " retest_limit, acute_limit, step_from_visit, step_to_visit, limit_source"
      " FROM progression_flags WHERE patient_id = ? AND kind IN ('slow_progression', 'acute_change',"
      " 'unconfirmed_change', 'improving') ORDER BY kind = 'improving',"
      " kind = 'unconfirmed_change', p_value",
      error);
  if (st == NULL)
    return NULL;
  sqlite3_bind_text (st, 1, pid, -1, SQLITE_STATIC);
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      CxrFlagRow f = { g_strdup (cxr__col_text (st, 0)), g_strdup (cxr__col_text (st, 1)),
                       trend_kind_of (cxr__col_text (st, 2)) };
      f.evidence = g_strdup (cxr__col_text (st, 3));
      f.event_visit = sqlite3_column_type (st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int (st, 4);
      f.first_visit = sqlite3_column_int (st, 5);
      f.last_visit = sqlite3_column_int (st, 6);
      f.p_value = cxr__col_double (st, 7);
      f.retest_limit = cxr__col_double (st, 8);
      f.acute_limit = cxr__col_double (st, 9);
      f.step_from_visit
          = sqlite3_column_type (st, 10) == SQLITE_NULL ? -1 : sqlite3_column_int (st, 10);
      f.step_to_visit
          = sqlite3_column_type (st, 11) == SQLITE_NULL ? -1 : sqlite3_column_int (st, 11);
      f.tau = f.slope = f.slope_low = f.slope_high = NAN;
      const char *src = cxr__col_text (st, 12);
      f.limit_source = g_strcmp0 (src, "visits") == 0             ? "visits"
                       : g_strcmp0 (src, "reference") == 0        ? "reference"
                       : g_strcmp0 (src, "reference_visits") == 0 ? "reference_visits"
                                                                  : "retest";
      g_array_append_val (flags, f);
    }
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    {
      cxr__store_fail (store, error, "reading the patient's flags");
      return NULL;
    }
  return g_steal_pointer (&flags);
}

/* --- the cohort index -------------------------------------------------------- */

gboolean
cxr__store_cohort_counts (CxrStore *store, int *patients, int *films, int *flagged, GError **error)
{
  sqlite3_stmt *st
      = cxr__store_prepare (store,
                            "SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM scans),"
                            " (SELECT count(*) FROM flagged_patients)",
                            error);
  if (st == NULL)
    return FALSE;
  gboolean ok = sqlite3_step (st) == SQLITE_ROW;
  if (ok)
    {
      *patients = sqlite3_column_int (st, 0);
      *films = sqlite3_column_int (st, 1);
      *flagged = sqlite3_column_int (st, 2);
    }
  else
    cxr__store_fail (store, error, "counting");
  sqlite3_finalize (st);
  return ok;
}

/**
 * cxr__store_index_rows:
 * Returns: (transfer full) (element-type CxrIndexRow): every patient,
 * flagged ones first (acute before slow, by p-value), then by id.
 */
GArray *
cxr__store_index_rows (CxrStore *store, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT p.patient_id, p.n_scans, p.n_frontal, coalesce(f.n_flags, 0), f.strongest_kind,"
      " f.min_p_value, f.signals, EXISTS (SELECT 1 FROM registrations r JOIN scans s"
      " ON s.scan_id = r.moving_scan_id WHERE s.patient_id = p.patient_id)"
      " FROM patients p LEFT JOIN flagged_patients f USING (patient_id)"
      " ORDER BY f.n_flags IS NULL, f.strongest_kind <> 'acute_change', f.min_p_value, p.patient_id",
      error);
  if (st == NULL)
    return NULL;
  GArray *rows = g_array_new (FALSE, TRUE, sizeof (CxrIndexRow));
  g_array_set_clear_func (rows, cxr__index_row_clear);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      CxrIndexRow r = { g_strdup (cxr__col_text (st, 0)), sqlite3_column_int (st, 1),
                        sqlite3_column_int (st, 2),       sqlite3_column_int (st, 3),
                        g_strdup (cxr__col_text (st, 4)), g_strdup (cxr__col_text (st, 6)),
                        cxr__col_double (st, 5),          sqlite3_column_int (st, 7) };
      g_array_append_val (rows, r);
    }
  sqlite3_finalize (st);
  return rows;
}

/**
 * cxr__store_finding_counts:
 * Returns: (transfer full) (element-type CxrFindingCount): per finding in
 * the metadata, the films labelled with it and the patients flagged for
 * its probability; most frequent first.
 */
GArray *
cxr__store_finding_counts (CxrStore *store, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT finding, count(*), (SELECT count(DISTINCT patient_id) FROM progression_flags"
      " WHERE signal = 'probability:' || finding"
      " AND kind IN ('slow_progression', 'acute_change', 'unconfirmed_change'))"
      " FROM scan_findings GROUP BY finding ORDER BY 2 DESC",
      error);
  if (st == NULL)
    return NULL;
  GArray *rows = g_array_new (FALSE, TRUE, sizeof (CxrFindingCount));
  g_array_set_clear_func (rows, cxr__finding_count_clear);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      CxrFindingCount c = { g_strdup (cxr__col_text (st, 0)), sqlite3_column_int (st, 1),
                            sqlite3_column_int (st, 2) };
      g_array_append_val (rows, c);
    }
  sqlite3_finalize (st);
  return rows;
}
