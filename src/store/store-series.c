/* SPDX-License-Identifier: MIT
 *
 * The store's side of progression: a patient's frontal series, the value
 * of each signal at each of its films (by the queries of the signal table,
 * progression/signal.c), the test-retest limits and the flags. The signal
 * values are read here once for the flags and once for the reports, with
 * the same statements.
 */
#include <string.h>

#include "cxr/error.h"
#include "store-db.h"
#include "store-private.h"

void
cxr__series_film_clear (gpointer film)
{
  CxrSeriesFilm *f = film;
  g_free (f->image_index);
  g_free (f->view_kind);
}

void
cxr__flag_row_clear (gpointer row)
{
  CxrFlagRow *f = row;
  g_free (f->signal);
  g_free (f->view_kind);
  g_free (f->evidence);
  g_free (f->left_out);
}

/* Runs a one-column query, the column as text into a new array. */
static GPtrArray *
text_column (CxrStore *store, sqlite3_stmt *st, GError **error)
{
  if (st == NULL)
    return NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (out, g_strdup (cxr__col_text (st, 0)));
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    {
      g_ptr_array_unref (out);
      cxr__store_fail (store, error, "query");
      return NULL;
    }
  return out;
}

/* --- test-retest limits ------------------------------------------------------- */

/**
 * cxr__store_calibration_films:
 * Up to @n frontal films to derive the test-retest limits from: each
 * patient's first frontal film, patients in patient_id order, each
 * content once (a film filed under two patients, as in a replicated
 * cohort, is one film). Chosen by what the films are, not how they are
 * encoded, so a store of the same archive as PNG, JPEG or DICOM is
 * calibrated on the same films; chosen from the whole store, so the
 * shards of a cohort, merged, are calibrated as the cohort is.
 *
 * Returns: (transfer full) (element-type CxrFilmRow): the films.
 */
GArray *
cxr__store_calibration_films (CxrStore *store, int n, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT scan_id, path, sha256 FROM (SELECT scan_id, path, sha256, patient_id,"
      "  row_number() OVER (PARTITION BY sha256 ORDER BY patient_id) AS d"
      "  FROM (SELECT scan_id, path, sha256, patient_id,"
      "   row_number() OVER (PARTITION BY patient_id ORDER BY visit) AS r FROM frontal_scans)"
      "  WHERE r = 1)"
      " WHERE d = 1 ORDER BY patient_id LIMIT ?",
      error);
  if (st == NULL)
    return NULL;
  sqlite3_bind_int (st, 1, n);
  GArray *films = g_array_new (FALSE, TRUE, sizeof (CxrFilmRow));
  g_array_set_clear_func (films, cxr__film_row_clear);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      CxrFilmRow f = { sqlite3_column_int64 (st, 0),
                       g_strdup (cxr__col_text (st, 1)),
                       g_strdup (cxr__col_text (st, 2)),
                       NULL,
                       NAN,
                       1.0 };
      g_array_append_val (films, f);
    }
  sqlite3_finalize (st);
  return films;
}

/**
 * cxr__store_write_limits:
 * The limits of @model_id, all or none (one transaction).
 */
gboolean
cxr__store_write_limits (CxrStore *store, gint64 model_id, const CxrLimitRow *rows, guint n,
                         const char *method, GError **error)
{
  if (!cxr_store_begin (store, error))
    return FALSE;
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "INSERT INTO retest_limits (model_id, signal, limit_value, n_copies, method) VALUES (?,?,?,?,?)",
      error);
  gboolean ok = st != NULL;
  for (guint k = 0; ok && k < n; k++)
    {
      sqlite3_bind_int64 (st, 1, model_id);
      sqlite3_bind_text (st, 2, rows[k].signal, -1, SQLITE_TRANSIENT);
      sqlite3_bind_double (st, 3, rows[k].value);
      sqlite3_bind_int (st, 4, rows[k].n_copies);
      sqlite3_bind_text (st, 5, method, -1, SQLITE_STATIC);
      ok = cxr__store_step_done (store, st, "storing test-retest limits", error);
    }
  sqlite3_finalize (st);
  if (ok)
    return cxr_store_commit (store, error);
  cxr_store_rollback (store);
  return FALSE;
}

/**
 * cxr__store_delete_limits:
 * Forgets the test-retest limits of @model_id (to derive them again).
 */
gboolean
cxr__store_delete_limits (CxrStore *store, gint64 model_id, GError **error)
{
  sqlite3_stmt *st
      = cxr__store_prepare (store, "DELETE FROM retest_limits WHERE model_id = ?", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, model_id);
  gboolean ok = cxr__store_step_done (store, st, "forgetting test-retest limits", error);
  sqlite3_finalize (st);
  return ok;
}

/**
 * cxr__store_copy_limits:
 * Replaces the test-retest limits of @model_id with those the store at
 * @from derived for the same model (by sha256), in one transaction, so
 * that stores of one cohort (its shards) flag against the same limits.
 * The visit-to-visit limits are not copied: each store derives them from
 * its own pairs when it flags.
 *
 * Returns: the limits copied, or -1 with @error set (also when @from has
 * none for the model).
 */
gint64
cxr__store_copy_limits (CxrStore *store, const char *from, gint64 model_id, GError **error)
{
  /* a store, readable, at a version this binary knows */
  g_autoptr (CxrStore) other
      = cxr_store_open (from, CXR_STORE_NO_CREATE | CXR_STORE_READ_ONLY, error);
  if (other == NULL)
    return -1;
  if (!cxr__store_attach (store, from, "lim", "attaching the store of --limits-from", error))
    return -1;
  gint64 n = -1;
  if (cxr_store_begin (store, error))
    {
      gboolean ok = cxr__store_delete_limits (store, model_id, error);
      sqlite3_stmt *st
          = ok ? cxr__store_prepare (
                store,
                "INSERT INTO main.retest_limits (model_id, signal, limit_value, n_copies, method)"
                " SELECT ?1, l.signal, l.limit_value, l.n_copies, l.method || ', from ' || ?2"
                " FROM lim.retest_limits l JOIN lim.models m ON m.model_id = l.model_id"
                " WHERE m.sha256 = (SELECT sha256 FROM main.models WHERE model_id = ?1)",
                error)
               : NULL;
      ok = st != NULL;
      if (ok)
        {
          sqlite3_bind_int64 (st, 1, model_id);
          sqlite3_bind_text (st, 2, from, -1, SQLITE_TRANSIENT);
          ok = cxr__store_step_done (store, st, "copying test-retest limits", error);
          n = ok ? sqlite3_changes (store->db) : -1;
        }
      sqlite3_finalize (st);
      if (ok && n == 0)
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                       "%s has no test-retest limits for this classifier (derive them there with"
                       " cxrtrack calibrate, or analyze it)",
                       from);
          ok = FALSE;
          n = -1;
        }
      if (ok)
        ok = cxr_store_commit (store, error);
      else
        cxr_store_rollback (store);
      if (!ok)
        n = -1;
    }
  cxr_store_exec (store, "DETACH DATABASE lim", NULL);
  return n;
}

/**
 * cxr__store_limits:
 * Returns: (transfer full): signal name -> its limits (a CxrLimit), or
 * %NULL with @error set.
 */
GHashTable *
cxr__store_limits (CxrStore *store, gint64 model_id, GError **error)
{
  /* a store opened read-only is not migrated: before schema 21 no limit
   * was the reference's */
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      cxr_store_schema_version (store) >= 21
          ? "SELECT signal, limit_value, visit_limit, visit_pairs, method LIKE 'reference%',"
            " coalesce(visit_source = 'reference', 0) FROM retest_limits WHERE model_id = ?"
          : "SELECT signal, limit_value, visit_limit, visit_pairs, 0, 0"
            " FROM retest_limits WHERE model_id = ?",
      error);
  if (st == NULL)
    return NULL;
  GHashTable *limits = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  sqlite3_bind_int64 (st, 1, model_id);
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      CxrLimit l
          = { sqlite3_column_double (st, 1), cxr__col_double (st, 2), sqlite3_column_int (st, 3),
              sqlite3_column_int (st, 4), sqlite3_column_int (st, 5) };
      g_hash_table_insert (limits, g_strdup (cxr__col_text (st, 0)), g_memdup2 (&l, sizeof l));
    }
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    {
      g_hash_table_unref (limits);
      cxr__store_fail (store, error, "reading the test-retest limits");
      return NULL;
    }
  return limits;
}

/* Lung fields whose areas are a measure: plausible ones, and those with
 * one side without aerated lung (lungs.h, airless_side); of the fixed
 * (lf) and the moving (lm) film of a pair. */
#define LF_LM_AREAS_USABLE                                                                         \
  " (lf.status = 'ok' OR lf.airless_side IS NOT NULL)"                                             \
  " AND (lm.status = 'ok' OR lm.airless_side IS NOT NULL)"

/* Every registration row's pair and every film's previous film of the
 * same view kind: the signals that need no registration (pair_signals),
 * for the pairs that lack them or whose lung areas can now be read. The
 * lung areas from the latest lung model whose fields on both films have
 * areas that are a measure (LF_LM_AREAS_USABLE). */
static const char write_pair_signals[]
    = "INSERT OR REPLACE INTO pair_signals (fixed_scan_id, moving_scan_id, kind, model_id,"
      " embedding_distance, max_abs_probability_delta, max_probability_rise, rise_finding,"
      " lung_area_change_right, lung_area_change_left, run_id)"
      " SELECT r.fixed_scan_id, r.moving_scan_id, r.kind, ?1,"
      "  (SELECT cosine_distance(a.vector, b.vector) FROM embeddings a, embeddings b"
      "    WHERE a.scan_id = r.fixed_scan_id AND b.scan_id = r.moving_scan_id"
      "      AND a.model_id = ?1 AND b.model_id = ?1),"
      "  (SELECT max(abs(pm.probability - pf.probability)) FROM predictions pf"
      "    JOIN predictions pm ON pm.finding = pf.finding AND pm.model_id = pf.model_id"
      "    WHERE pf.scan_id = r.fixed_scan_id AND pm.scan_id = r.moving_scan_id"
      "      AND pf.model_id = ?1),"
      "  (SELECT pm.probability - pf.probability FROM predictions pf"
      "    JOIN predictions pm ON pm.finding = pf.finding AND pm.model_id = pf.model_id"
      "    WHERE pf.scan_id = r.fixed_scan_id AND pm.scan_id = r.moving_scan_id"
      "      AND pf.model_id = ?1 ORDER BY 1 DESC LIMIT 1),"
      "  (SELECT pf.finding FROM predictions pf"
      "    JOIN predictions pm ON pm.finding = pf.finding AND pm.model_id = pf.model_id"
      "    WHERE pf.scan_id = r.fixed_scan_id AND pm.scan_id = r.moving_scan_id"
      "      AND pf.model_id = ?1 ORDER BY pm.probability - pf.probability DESC LIMIT 1),"
      "  (SELECT CASE WHEN lf.airless_side = 'right' THEN NULL"
      "     ELSE lm.right_area_px / NULLIF (lf.right_area_px, 0) - 1 END"
      "    FROM lung_fields lf JOIN lung_fields lm ON lm.model_id = lf.model_id"
      "    WHERE lf.scan_id = r.fixed_scan_id AND lm.scan_id = r.moving_scan_id"
      "      AND" LF_LM_AREAS_USABLE " ORDER BY lf.model_id DESC LIMIT 1),"
      "  (SELECT CASE WHEN lf.airless_side = 'left' THEN NULL"
      "     ELSE lm.left_area_px / NULLIF (lf.left_area_px, 0) - 1 END"
      "    FROM lung_fields lf JOIN lung_fields lm ON lm.model_id = lf.model_id"
      "    WHERE lf.scan_id = r.fixed_scan_id AND lm.scan_id = r.moving_scan_id"
      "      AND" LF_LM_AREAS_USABLE " ORDER BY lf.model_id DESC LIMIT 1),"
      "  ?2"
      "  FROM (SELECT fixed_scan_id, moving_scan_id, kind FROM registrations UNION ALL"
      "        SELECT prev, scan_id, 'same_view' FROM (SELECT scan_id, lag(scan_id) OVER"
      "          (PARTITION BY patient_id, view_kind ORDER BY visit) AS prev FROM frontal_scans) v"
      "         WHERE prev IS NOT NULL AND NOT EXISTS (SELECT 1 FROM registrations g"
      "           WHERE g.fixed_scan_id = v.prev AND g.moving_scan_id = v.scan_id"
      "             AND g.kind = 'previous')) r"
      " WHERE EXISTS (SELECT 1 FROM embeddings e WHERE e.scan_id = r.fixed_scan_id"
      "                 AND e.model_id = ?1)"
      "   AND EXISTS (SELECT 1 FROM embeddings e WHERE e.scan_id = r.moving_scan_id"
      "                 AND e.model_id = ?1)"
      "   AND NOT EXISTS (SELECT 1 FROM pair_signals p WHERE p.fixed_scan_id = r.fixed_scan_id"
      "     AND p.moving_scan_id = r.moving_scan_id AND p.kind = r.kind AND p.model_id = ?1"
      "     AND (p.lung_area_change_right IS NOT NULL OR p.lung_area_change_left IS NOT NULL"
      "       OR NOT EXISTS (SELECT 1 FROM lung_fields lf JOIN lung_fields lm"
      "         ON lm.model_id = lf.model_id WHERE lf.scan_id = r.fixed_scan_id"
      "           AND lm.scan_id = r.moving_scan_id AND" LF_LM_AREAS_USABLE ")))";

/**
 * cxr__store_write_pair_signals:
 * Writes pair_signals (above) in one transaction.
 *
 * Returns: the rows written, or -1 with @error set.
 */
gint64
cxr__store_write_pair_signals (CxrStore *store, gint64 model_id, gint64 run_id, GError **error)
{
  if (!cxr_store_begin (store, error))
    return -1;
  sqlite3_stmt *st = cxr__store_prepare (store, write_pair_signals, error);
  gboolean ok = st != NULL;
  if (ok)
    {
      sqlite3_bind_int64 (st, 1, model_id);
      sqlite3_bind_int64 (st, 2, run_id);
      ok = cxr__store_step_done (store, st, "storing pair signals", error);
    }
  sqlite3_finalize (st);
  gint64 n = ok ? sqlite3_changes (store->db) : -1;
  if (ok && cxr_store_commit (store, error))
    return n;
  if (!ok)
    cxr_store_rollback (store);
  return -1;
}

/**
 * cxr__store_write_visit_limits:
 * The visit-to-visit limits of @limits (signal name -> CxrLimit) into
 * their retest_limits rows, in one transaction.
 */
gboolean
cxr__store_write_visit_limits (CxrStore *store, gint64 model_id, GHashTable *limits, GError **error)
{
  if (!cxr_store_begin (store, error))
    return FALSE;
  sqlite3_stmt *st
      = cxr__store_prepare (store,
                            "UPDATE retest_limits SET visit_limit = ?, visit_pairs = ?,"
                            " visit_source = ? WHERE model_id = ? AND signal = ?",
                            error);
  gboolean ok = st != NULL;
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, limits);
  while (ok && g_hash_table_iter_next (&it, &key, &value))
    {
      const CxrLimit *l = value;
      cxr__bind_double_or_null (st, 1, l->visit_limit);
      sqlite3_bind_int (st, 2, l->visit_pairs);
      if (isnan (l->visit_limit))
        sqlite3_bind_null (st, 3);
      else
        sqlite3_bind_text (st, 3, l->visit_reference ? "reference" : "store", -1, SQLITE_STATIC);
      sqlite3_bind_int64 (st, 4, model_id);
      sqlite3_bind_text (st, 5, key, -1, SQLITE_STATIC);
      ok = cxr__store_step_done (store, st, "storing visit-to-visit limits", error);
    }
  sqlite3_finalize (st);
  if (ok)
    return cxr_store_commit (store, error);
  cxr_store_rollback (store);
  return FALSE;
}

/* --- series ------------------------------------------------------------------- */

/**
 * cxr__store_flag_patients:
 * Returns: (transfer full) (element-type utf8): the patients with two or
 * more readable frontal films.
 */
GPtrArray *
cxr__store_flag_patients (CxrStore *store, GError **error)
{
  return text_column (
      store,
      cxr__store_prepare (store, "SELECT patient_id FROM patients WHERE n_frontal >= 2", error),
      error);
}

/**
 * cxr__store_frontal_series:
 * Returns: (transfer full) (element-type CxrSeriesFilm): a patient's
 * readable frontal films, by view kind, then visit.
 */
GArray *
cxr__store_frontal_series (CxrStore *store, const char *patient_id, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT scan_id, visit, coalesce(julianday(study_date), day_offset), image_index, view_kind"
      "  FROM frontal_scans WHERE patient_id = ? ORDER BY view_kind, visit",
      error);
  if (st == NULL)
    return NULL;
  GArray *films = g_array_new (FALSE, TRUE, sizeof (CxrSeriesFilm));
  g_array_set_clear_func (films, cxr__series_film_clear);
  sqlite3_bind_text (st, 1, patient_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      CxrSeriesFilm f
          = { sqlite3_column_int64 (st, 0), sqlite3_column_int (st, 1), cxr__col_double (st, 2),
              g_strdup (cxr__col_text (st, 3)), g_strdup (cxr__col_text (st, 4)) };
      g_array_append_val (films, f);
    }
  sqlite3_finalize (st);
  return films;
}

/* --- signal values ------------------------------------------------------------ */

struct _CxrSignalReader {
  gint64 model_id;
  guint n;
  sqlite3_stmt **st; /* a statement per query (NULL: the store has no such value) */
};

void
cxr__signal_reader_free (CxrSignalReader *r)
{
  if (r == NULL)
    return;
  for (guint i = 0; i < r->n; i++)
    sqlite3_finalize (r->st[i]);
  g_free (r->st);
  g_free (r);
}

/**
 * cxr__signal_reader_new:
 * @sql: (array length=n): a query per kind of signal (the signal table's,
 *   progression/signal.c), each giving one number, or no row or NULL where
 *   the film has no value: ?1 is the film, ?2 the first film of its
 *   series, ?3 @model_id, ?4 the signal's finding. NULL: a kind this store
 *   cannot have (it is older than the tables it reads).
 *
 * Prepares each query once. The signal table holds the queries so that a
 * signal is one row; the store still runs every statement.
 */
CxrSignalReader *
cxr__signal_reader_new (CxrStore *store, gint64 model_id, const char *const *sql, guint n,
                        GError **error)
{
  g_autoptr (CxrSignalReader) r = g_new0 (CxrSignalReader, 1);
  r->model_id = model_id;
  r->st = g_new0 (sqlite3_stmt *, n);
  r->n = n;
  for (guint i = 0; i < n; i++)
    if (sql[i] && (r->st[i] = cxr__store_prepare (store, sql[i], error)) == NULL)
      return NULL;
  return g_steal_pointer (&r);
}

/**
 * cxr__signal_reader_value:
 * @query: which of the reader's queries
 * @finding: (nullable): bound to ?4
 *
 * Returns: whether the film @scan_id has a value (in @value) by query
 * @query, in a series whose first film is @first_scan_id.
 */
gboolean
cxr__signal_reader_value (CxrSignalReader *r, guint query, gint64 first_scan_id, gint64 scan_id,
                          const char *finding, double *value)
{
  g_return_val_if_fail (query < r->n, FALSE);
  sqlite3_stmt *q = r->st[query];
  if (q == NULL)
    return FALSE;
  int np = sqlite3_bind_parameter_count (q);
  if (np >= 1)
    sqlite3_bind_int64 (q, 1, scan_id);
  if (np >= 2)
    sqlite3_bind_int64 (q, 2, first_scan_id);
  if (np >= 3)
    sqlite3_bind_int64 (q, 3, r->model_id);
  if (np >= 4)
    sqlite3_bind_text (q, 4, finding, -1, SQLITE_STATIC);
  gboolean have = sqlite3_step (q) == SQLITE_ROW && sqlite3_column_type (q, 0) != SQLITE_NULL;
  if (have)
    *value = sqlite3_column_double (q, 0);
  sqlite3_reset (q);
  return have;
}

/* --- flags ------------------------------------------------------------------- */

static const char delete_flags[] = "DELETE FROM progression_flags WHERE patient_id = ?";
static const char insert_flag[]
    = "INSERT INTO progression_flags (patient_id, signal, view_kind, kind, n_visits, first_visit,"
      " last_visit, time_axis, tau, p_value, slope, slope_low, slope_high, retest_limit,"
      " acute_limit, event_visit, evidence, model_id, run_id, limit_source, step_from_visit,"
      " step_to_visit, left_out) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

/**
 * cxr__store_replace_flags:
 * A patient's flags (CxrFlagRow), in place of the ones stored, in one
 * transaction.
 */
gboolean
cxr__store_replace_flags (CxrStore *store, const char *patient_id, const GArray *flags,
                          gint64 model_id, gint64 run_id, GError **error)
{
  if (!cxr_store_begin (store, error))
    return FALSE;
  sqlite3_stmt *del = NULL, *ins = NULL;
  gboolean ok = cxr__store_prepare_all (store, error, &del, delete_flags, &ins, insert_flag, NULL);
  if (ok)
    {
      sqlite3_bind_text (del, 1, patient_id, -1, SQLITE_STATIC);
      ok = cxr__store_step_done (store, del, "storing progression flags", error);
    }
  for (guint k = 0; ok && k < flags->len; k++)
    {
      const CxrFlagRow *f = &g_array_index (flags, CxrFlagRow, k);
      int i = 1;
      sqlite3_bind_text (ins, i++, patient_id, -1, SQLITE_STATIC);
      sqlite3_bind_text (ins, i++, f->signal, -1, SQLITE_STATIC);
      sqlite3_bind_text (ins, i++, f->view_kind, -1, SQLITE_STATIC);
      sqlite3_bind_text (ins, i++, cxr_trend_kind_name (f->kind), -1, SQLITE_STATIC);
      sqlite3_bind_int (ins, i++, f->n_visits);
      sqlite3_bind_int (ins, i++, f->first_visit);
      sqlite3_bind_int (ins, i++, f->last_visit);
      sqlite3_bind_text (ins, i++, f->time_axis, -1, SQLITE_STATIC);
      double v[] = { f->tau,        f->p_value,      f->slope,      f->slope_low,
                     f->slope_high, f->retest_limit, f->acute_limit };
      for (guint q = 0; q < G_N_ELEMENTS (v); q++)
        cxr__bind_double_or_null (ins, i++, v[q]);
      cxr__bind_int_or_null (ins, i++, f->event_visit);
      sqlite3_bind_text (ins, i++, f->evidence, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (ins, i++, model_id);
      sqlite3_bind_int64 (ins, i++, run_id);
      cxr__bind_text_or_null (ins, i++, f->limit_source);
      cxr__bind_int_or_null (ins, i++, f->step_from_visit);
      cxr__bind_int_or_null (ins, i++, f->step_to_visit);
      cxr__bind_text_or_null (ins, i++, f->left_out);
      ok = cxr__store_step_done (store, ins, "storing progression flags", error);
    }
  sqlite3_finalize (del);
  sqlite3_finalize (ins);
  if (ok)
    return cxr_store_commit (store, error);
  cxr_store_rollback (store);
  return FALSE;
}
