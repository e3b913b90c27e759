/* SPDX-License-Identifier: MIT
 *
 * Merging stores: the shard stores of a cohort split by patient
 * (--shard K/N) into one. Everything that belongs to films and pairs is
 * copied with its ids remapped: scans by image_index (the same film in two
 * stores is one row; a film of that name with other bytes is a conflict,
 * reported and left out with what depends on it), models by sha256, runs
 * by (command, argv, started_at, version), so that the shards' runs are
 * kept. Rows are upserted, never deleted and re-inserted, so merging a
 * store twice, or again after a killed merge, ends with the same rows.
 * Each source is one transaction; merged_stores remembers what was merged
 * (a fingerprint of the source's runs), and an unchanged source is
 * skipped.
 *
 * The difference maps and lung masks the rows name are hard-linked into
 * this store's artifacts folder under the same relative names (copied when
 * the folders are on different file systems).
 *
 * Not copied: test-retest limits and progression flags. They are
 * properties of the whole cohort (the limits are derived from its first
 * films, the visit limits from all its pairs), so a shard's would make a
 * patient's flags depend on how the cohort was split; `cxrtrack merge`
 * derives them again over the merged store (cxr_pipeline_analyze). For
 * the same reason a merge that brings new films forgets the limits the
 * store had.
 */
#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "cxr/error.h"
#include "store-db.h"
#include "store-private.h"
#include "util-private.h"

/* The tables copied after scans, in foreign-key order. Their columns
 * named scan_id, fixed_scan_id or moving_scan_id are remapped through the
 * scans, model_id through the models, run_id through the runs. */
static const char *const copied_tables[] = {
  "scan_findings", "dicom_scans",   "embeddings",   "predictions",          "heatmaps",
  "lung_fields",   "registrations", "pair_changes", "pair_finding_changes", "pair_change_regions",
  "pair_signals",  "film_severity", "zone_scores",
};

void
cxr_merge_summary_init (CxrMergeSummary *s)
{
  memset (s, 0, sizeof *s);
  s->messages = g_ptr_array_new_with_free_func (g_free);
}

void
cxr_merge_summary_clear (CxrMergeSummary *s)
{
  g_clear_pointer (&s->messages, g_ptr_array_unref);
}

static void note (CxrMergeSummary *s, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
note (CxrMergeSummary *s, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  cxr__messages_addv (s->messages, &s->n_messages, 20, fmt, ap);
  va_end (ap);
}

/* The first text column of the first row of @sql, or NULL. */
static char *
query_text (CxrStore *store, const char *sql, const char *bind, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (store, sql, error);
  if (st == NULL)
    return NULL;
  if (bind)
    sqlite3_bind_text (st, 1, bind, -1, SQLITE_TRANSIENT);
  char *v = NULL;
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    v = g_strdup (cxr__col_text (st, 0) ? cxr__col_text (st, 0) : "");
  sqlite3_finalize (st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    cxr__store_fail (store, error, "merging");
  else if (v == NULL)
    v = g_strdup ("");
  return v;
}

static gint64
query_int (CxrStore *store, const char *sql, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (store, sql, error);
  if (st == NULL)
    return -1;
  gint64 v = sqlite3_step (st) == SQLITE_ROW ? sqlite3_column_int64 (st, 0) : -1;
  sqlite3_finalize (st);
  if (v < 0)
    cxr__store_fail (store, error, "merging");
  return v;
}

/* A fingerprint of @src: its schema version and every run. A store that
 * ran anything since its last merge has another. */
static char *
fingerprint (CxrStore *src, GError **error)
{
  g_autofree char *runs = query_text (
      src,
      "SELECT group_concat(r, ';') FROM (SELECT run_id || ',' || command || ',' || started_at"
      " || ',' || coalesce(ended_at, '') || ',' || status AS r FROM runs ORDER BY run_id)",
      NULL, error);
  if (runs == NULL)
    return NULL;
  g_autofree char *all = g_strdup_printf ("v%d;%s", cxr_store_schema_version (src), runs);
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, all, -1);
}

/* The INSERT ... SELECT that copies table @t of src into main, its ids
 * remapped, upserting on its primary key. */
static char *
copy_sql (CxrStore *store, const char *t, GError **error)
{
  g_autofree char *pragma = g_strdup_printf ("PRAGMA main.table_info(%s)", t);
  sqlite3_stmt *st = cxr__store_prepare (store, pragma, error);
  if (st == NULL)
    return NULL;
  GString *cols = g_string_new (NULL), *sel = g_string_new (NULL), *where = g_string_new ("1");
  GString *pk = g_string_new (NULL), *set = g_string_new (NULL);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      const char *c = cxr__col_text (st, 1);
      const char *sep = cols->len ? ", " : "";
      g_string_append_printf (cols, "%s%s", sep, c);
      if (g_str_equal (c, "scan_id") || g_str_equal (c, "fixed_scan_id")
          || g_str_equal (c, "moving_scan_id"))
        {
          g_string_append_printf (sel, "%s(SELECT new FROM temp.merge_scans WHERE old = t.%s)", sep,
                                  c);
          /* unary +: a filter on a scan of t, never the driver of the
           * loop (two IN lists on a key's columns would be searched as
           * their cross product) */
          g_string_append_printf (where, " AND +t.%s IN (SELECT old FROM temp.merge_scans)", c);
        }
      else if (g_str_equal (c, "overlay_path") || g_str_equal (c, "map_path")
               || g_str_equal (c, "mask_path"))
        /* an artifact not copied (copy_artifacts): the row without it */
        g_string_append_printf (sel,
                                "%sCASE WHEN t.%s IN (SELECT name FROM temp.merge_refused)"
                                " THEN NULL ELSE t.%s END",
                                sep, c, c);
      else if (g_str_equal (c, "model_id"))
        g_string_append_printf (sel, "%s(SELECT new FROM temp.merge_models WHERE old = t.%s)", sep,
                                c);
      else if (g_str_equal (c, "run_id"))
        g_string_append_printf (sel, "%s(SELECT new FROM temp.merge_runs WHERE old = t.%s)", sep,
                                c);
      else
        g_string_append_printf (sel, "%st.%s", sep, c);
      if (sqlite3_column_int (st, 5) > 0)
        g_string_append_printf (pk, "%s%s", pk->len ? ", " : "", c);
      else
        g_string_append_printf (set, "%s%s = excluded.%s", set->len ? ", " : "", c, c);
    }
  sqlite3_finalize (st);
  char *sql = g_strdup_printf ("INSERT INTO main.%s (%s) SELECT %s FROM src.%s t WHERE %s"
                               " ON CONFLICT (%s) DO %s%s",
                               t, cols->str, sel->str, t, where->str, pk->str,
                               set->len ? "UPDATE SET " : "NOTHING", set->str);
  gboolean ok = cols->len > 0 && pk->len > 0;
  g_string_free (cols, TRUE);
  g_string_free (sel, TRUE);
  g_string_free (where, TRUE);
  g_string_free (pk, TRUE);
  g_string_free (set, TRUE);
  if (!ok)
    {
      g_free (sql);
      g_set_error (error, CXR_ERROR, CXR_ERROR_DB, "merging: table %s has no key", t);
      return NULL;
    }
  return sql;
}

/* Ids of src in main: runs, models, then scans (conflicts left out). */
static const char map_sql[]
    = "CREATE TEMP TABLE IF NOT EXISTS merge_runs (old INTEGER PRIMARY KEY, new INTEGER);"
      "CREATE TEMP TABLE IF NOT EXISTS merge_models (old INTEGER PRIMARY KEY, new INTEGER);"
      "CREATE TEMP TABLE IF NOT EXISTS merge_scans (old INTEGER PRIMARY KEY, new INTEGER);"
      "CREATE TEMP TABLE IF NOT EXISTS merge_new_scans (scan_id INTEGER PRIMARY KEY);"
      "DELETE FROM temp.merge_runs; DELETE FROM temp.merge_models; DELETE FROM temp.merge_scans;"
      "DELETE FROM temp.merge_new_scans;"
      "INSERT INTO main.runs (command, argv, version, started_at, ended_at, status, n_rows, n_ok,"
      "  n_missing, n_invalid, n_unchanged, n_rejected, n_conflicts, messages)"
      " SELECT command, argv, version, started_at, ended_at, status, n_rows, n_ok, n_missing,"
      "  n_invalid, n_unchanged, n_rejected, n_conflicts, messages FROM src.runs s"
      " WHERE NOT EXISTS (SELECT 1 FROM main.runs m WHERE m.command = s.command"
      "   AND m.argv = s.argv AND m.started_at = s.started_at AND m.version = s.version)"
      " ORDER BY run_id;"
      "INSERT INTO temp.merge_runs SELECT s.run_id, (SELECT min(m.run_id) FROM main.runs m"
      "  WHERE m.command = s.command AND m.argv = s.argv AND m.started_at = s.started_at"
      "    AND m.version = s.version) FROM src.runs s;"
      "INSERT INTO main.models (name, architecture, sha256, classes, metadata, input_size,"
      "  embedding_dim, added_at)"
      " SELECT name, architecture, sha256, classes, metadata, input_size, embedding_dim, added_at"
      "  FROM src.models WHERE sha256 NOT IN (SELECT sha256 FROM main.models) ORDER BY model_id;"
      "INSERT INTO temp.merge_models SELECT s.model_id, m.model_id FROM src.models s"
      "  JOIN main.models m ON m.sha256 = s.sha256;"
      "INSERT INTO main.patients (patient_id, sex, n_scans, n_frontal, first_age_years,"
      "  last_age_years) SELECT patient_id, sex, n_scans, n_frontal, first_age_years,"
      "  last_age_years FROM src.patients WHERE true ON CONFLICT (patient_id) DO NOTHING;";

/* The scans of src that main lacks, then the map of every scan of src
 * whose image_index main holds with the same content. */
static const char scans_sql[]
    = "INSERT INTO main.scans (image_index, patient_id, visit, follow_up, study_date, day_offset,"
      "  age_years, sex, view_position, view_kind, finding_labels, orig_width, orig_height,"
      "  orig_spacing_x_mm, orig_spacing_y_mm, path, sha256, width, height, bit_depth, color_type,"
      "  pixel_spacing_mm, status, error, run_id, study_time, orientation)"
      " SELECT image_index, patient_id, visit, follow_up, study_date, day_offset, age_years, sex,"
      "  view_position, view_kind, finding_labels, orig_width, orig_height, orig_spacing_x_mm,"
      "  orig_spacing_y_mm, path, sha256, width, height, bit_depth, color_type, pixel_spacing_mm,"
      "  status, error, (SELECT new FROM temp.merge_runs WHERE old = s.run_id), study_time,"
      "  orientation FROM src.scans s WHERE s.image_index NOT IN (SELECT image_index FROM main.scans)"
      "  ORDER BY s.scan_id;"
      "INSERT INTO temp.merge_new_scans SELECT m.scan_id FROM main.scans m"
      "  WHERE m.scan_id > (SELECT last FROM temp.merge_last);"
      "INSERT INTO temp.merge_scans SELECT s.scan_id, m.scan_id FROM src.scans s"
      "  JOIN main.scans m ON m.image_index = s.image_index"
      " WHERE m.status = s.status AND m.sha256 IS s.sha256;";

/* Patients whose films now come from more than one store: visit order
 * again, over all their films (their pairs are then pending for analyze).
 * The other new patients keep the source's order and counts. */
static const char split_sql[]
    = "UPDATE main.scans SET visit = NULL WHERE patient_id IN ("
      "  SELECT DISTINCT n.patient_id FROM main.scans n"
      "   WHERE n.scan_id IN (SELECT scan_id FROM temp.merge_new_scans)"
      "     AND EXISTS (SELECT 1 FROM main.scans o WHERE o.patient_id = n.patient_id"
      "       AND o.scan_id NOT IN (SELECT new FROM temp.merge_scans)))";

/* Whether @a and @b are one file. */
static gboolean
same_file (const struct stat *a, const struct stat *b)
{
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Copies what @fd holds into a new file @to (never through a link). */
static gboolean
copy_fd (int fd, const char *to, GError **error)
{
  int out = open (to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0)
    {
      int e = errno;
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot create: %s", to, g_strerror (e));
      return FALSE;
    }
  char buf[65536];
  ssize_t k;
  gboolean ok = lseek (fd, 0, SEEK_SET) == 0;
  while (ok && (k = read (fd, buf, sizeof buf)) != 0)
    {
      if (k < 0 && errno == EINTR)
        continue;
      ok = k > 0 && write (out, buf, (size_t) k) == k;
    }
  int e = errno;
  if (close (out) != 0 && ok)
    {
      ok = FALSE;
      e = errno;
    }
  if (!ok)
    {
      g_unlink (to);
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot write: %s", to, g_strerror (e));
    }
  return ok;
}

/* Hard-links (or copies) SRC.artifacts/@rel to DST.artifacts/@rel. The
 * source is opened below its folder only (cxr__artifact_open: a plain
 * name, no symbolic link); a file is linked only if the link is that very
 * file. *@copied says whether it now is in DST; if not, the reason is
 * noted and the rows are merged without it. */
static gboolean
copy_artifact (const char *src_dir, const char *dst_dir, const char *rel, gboolean *copied,
               CxrMergeSummary *sum, GError **error)
{
  *copied = FALSE;
  g_autoptr (GError) why = NULL;
  struct stat sst, dst;
  int fd = cxr__artifact_open (src_dir, rel, NULL, &why);
  if (fd < 0)
    {
      if (errno == ENOENT)
        sum->n_artifacts_missing++;
      note (sum, "%s: merged without this file", why->message);
      return TRUE;
    }
  g_autofree char *from = g_build_filename (src_dir, rel, NULL);
  g_autofree char *to = g_build_filename (dst_dir, rel, NULL);
  g_autofree char *dir = g_path_get_dirname (to);
  gboolean ok = fstat (fd, &sst) == 0;
  if (ok && lstat (to, &dst) == 0 && same_file (&sst, &dst))
    {
      close (fd);
      *copied = TRUE; /* merged before */
      return TRUE;
    }
  if (ok && g_mkdir_with_parents (dir, 0700) != 0)
    {
      int e = errno;
      close (fd);
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot create: %s", dir, g_strerror (e));
      return FALSE;
    }
  g_autofree char *tmp = g_strconcat (to, ".merge-tmp", NULL);
  g_unlink (tmp);
  if (ok && link (from, tmp) == 0)
    {
      /* the name may have been swapped since it was opened */
      if (lstat (tmp, &dst) != 0 || !S_ISREG (dst.st_mode) || !same_file (&sst, &dst))
        {
          g_unlink (tmp);
          ok = copy_fd (fd, tmp, error);
        }
    }
  else if (ok)
    ok = copy_fd (fd, tmp, error);
  close (fd);
  if (!ok)
    return FALSE;
  if (g_rename (tmp, to) != 0)
    {
      int e = errno;
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot rename to %s: %s", tmp, to,
                   g_strerror (e));
      return FALSE;
    }
  *copied = TRUE;
  sum->n_artifacts++;
  return TRUE;
}

/* The artifacts src's merged rows name, each with its owner in main's
 * ids (a pair's two films; a film's for a lung mask), and the owners
 * main's rows give the same names. A name is refused when two owners
 * claim it: within src, or src's row and another row already in main (a
 * file of main is never replaced by another row's). */
static const char artifacts_sql[]
    = "CREATE TEMP TABLE IF NOT EXISTS merge_refused (name TEXT PRIMARY KEY);"
      "CREATE TEMP TABLE IF NOT EXISTS merge_artifacts (name TEXT, a INTEGER, b INTEGER);"
      "CREATE TEMP TABLE IF NOT EXISTS merge_owners (name TEXT, a INTEGER, b INTEGER);"
      "DELETE FROM temp.merge_refused; DELETE FROM temp.merge_artifacts;"
      "DELETE FROM temp.merge_owners;"
      "INSERT INTO temp.merge_artifacts SELECT n, (SELECT new FROM temp.merge_scans WHERE old = f),"
      "  CASE WHEN m = -1 THEN -1 ELSE (SELECT new FROM temp.merge_scans WHERE old = m) END"
      "  FROM ("
      /* unary +: see copy_sql */
      "  SELECT overlay_path AS n, fixed_scan_id AS f, moving_scan_id AS m FROM src.pair_changes"
      "   WHERE overlay_path IS NOT NULL AND +fixed_scan_id IN (SELECT old FROM temp.merge_scans)"
      "     AND +moving_scan_id IN (SELECT old FROM temp.merge_scans) UNION"
      "  SELECT map_path, fixed_scan_id, moving_scan_id FROM src.pair_changes"
      "   WHERE map_path IS NOT NULL AND +fixed_scan_id IN (SELECT old FROM temp.merge_scans)"
      "     AND +moving_scan_id IN (SELECT old FROM temp.merge_scans) UNION"
      "  SELECT mask_path, scan_id, -1 FROM src.lung_fields WHERE mask_path IS NOT NULL"
      "   AND +scan_id IN (SELECT old FROM temp.merge_scans));"
      "INSERT INTO temp.merge_owners"
      "  SELECT overlay_path, fixed_scan_id, moving_scan_id FROM main.pair_changes"
      "   WHERE overlay_path IN (SELECT name FROM temp.merge_artifacts) UNION"
      "  SELECT map_path, fixed_scan_id, moving_scan_id FROM main.pair_changes"
      "   WHERE map_path IN (SELECT name FROM temp.merge_artifacts) UNION"
      "  SELECT mask_path, scan_id, -1 FROM main.lung_fields"
      "   WHERE mask_path IN (SELECT name FROM temp.merge_artifacts);"
      "INSERT OR IGNORE INTO temp.merge_refused SELECT name FROM ("
      "  SELECT name, a, b FROM temp.merge_artifacts UNION SELECT name, a, b FROM temp.merge_owners)"
      " GROUP BY name HAVING count(*) > 1;";

static gboolean
refuse (CxrStore *store, const char *rel, GError **error)
{
  sqlite3_stmt *st
      = cxr__store_prepare (store, "INSERT OR IGNORE INTO temp.merge_refused VALUES (?)", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, rel, -1, SQLITE_TRANSIENT);
  gboolean ok = cxr__store_step_done (store, st, "merging", error);
  sqlite3_finalize (st);
  return ok;
}

/* The files of src's merged rows into main's artifacts folder; the names
 * not copied go to temp.merge_refused, and their rows are merged without
 * them (copy_sql). Before the rows are copied. */
static gboolean
copy_artifacts (CxrStore *store, const char *src_dir, const char *dst_dir, CxrMergeSummary *sum,
                GError **error)
{
  if (!cxr_store_exec (store, artifacts_sql, error))
    return FALSE;
  sqlite3_stmt *st
      = cxr__store_prepare (store,
                            "SELECT DISTINCT name, name IN (SELECT name FROM temp.merge_refused)"
                            " FROM temp.merge_artifacts ORDER BY name",
                            error);
  if (st == NULL)
    return FALSE;
  gboolean ok = TRUE;
  int rc = SQLITE_DONE;
  while (ok && (rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      const char *rel = cxr__col_text (st, 0);
      gboolean copied = FALSE;
      if (!cxr__artifact_name_ok (rel))
        note (sum, "artifact name '%s' is not a plain relative name: merged without it", rel);
      else if (sqlite3_column_int (st, 1))
        note (sum,
              "artifact '%s': named by rows of two pairs or films (in this store or the one"
              " merged into): merged without it, no file replaced",
              rel);
      else
        ok = copy_artifact (src_dir, dst_dir, rel, &copied, sum, error);
      if (ok && !copied)
        ok = refuse (store, rel, error);
    }
  sqlite3_finalize (st);
  if (ok && rc != SQLITE_DONE && rc != SQLITE_ROW)
    ok = cxr__store_fail (store, error, "listing the artifacts to merge");
  return ok;
}

/* Films of main that src holds under the same name with other content. */
static gboolean
note_conflicts (CxrStore *store, const char *source, CxrMergeSummary *sum, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT s.image_index, s.patient_id FROM src.scans s JOIN main.scans m"
      "  ON m.image_index = s.image_index WHERE s.scan_id NOT IN (SELECT old FROM temp.merge_scans)",
      error);
  if (st == NULL)
    return FALSE;
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      sum->n_conflicts++;
      note (sum,
            "%s: film %s (patient %s) is in the store already with other content or status:"
            " kept the store's, left out this one and its results",
            source, cxr__col_text (st, 0), cxr__col_text (st, 1));
    }
  sqlite3_finalize (st);
  return rc == SQLITE_DONE || cxr__store_fail (store, error, "listing conflicting films");
}

static gboolean
merge_attached (CxrStore *store, const char *source, const char *src_artifacts, const char *print,
                gint64 run_id, CxrMergeSummary *sum, GError **error)
{
  /* the scans inserted now are those above the last one before */
  if (!cxr_store_exec (store, map_sql, error)
      || !cxr_store_exec (store,
                          "CREATE TEMP TABLE IF NOT EXISTS merge_last (last INTEGER);"
                          "DELETE FROM temp.merge_last;"
                          "INSERT INTO temp.merge_last SELECT coalesce(max(scan_id), 0)"
                          " FROM main.scans",
                          error)
      || !cxr_store_exec (store, scans_sql, error))
    return FALSE;
  if (!note_conflicts (store, source, sum, error) || !cxr_store_exec (store, split_sql, error)
      || !cxr__store_order_visits (store, error))
    return FALSE;
  g_autofree char *dst_artifacts = cxr_store_artifacts_dir (store);
  if (!copy_artifacts (store, src_artifacts, dst_artifacts, sum, error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (copied_tables); i++)
    {
      g_autofree char *sql = copy_sql (store, copied_tables[i], error);
      if (sql == NULL || !cxr_store_exec (store, sql, error))
        return FALSE;
      sum->n_rows += (guint64) sqlite3_changes (store->db);
    }
  sum->n_scans = (guint64) query_int (store, "SELECT count(*) FROM temp.merge_scans", error);
  sum->n_new_scans
      = (guint64) query_int (store, "SELECT count(*) FROM temp.merge_new_scans", error);
  /* limits derived before these films came are not the cohort's: the
   * pass after the merge derives them again */
  if (sum->n_new_scans > 0 && !cxr_store_exec (store, "DELETE FROM main.retest_limits", error))
    return FALSE;
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "INSERT OR REPLACE INTO main.merged_stores (source, fingerprint, n_scans,"
      " n_conflicts, run_id, merged_at)"
      " VALUES (?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
      error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, source, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text (st, 2, print, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64 (st, 3, (gint64) sum->n_scans);
  sqlite3_bind_int64 (st, 4, (gint64) sum->n_conflicts);
  cxr__bind_int_or_null (st, 5, run_id > 0 ? run_id : -1);
  gboolean ok = cxr__store_step_done (store, st, "recording the merge", error);
  sqlite3_finalize (st);
  return ok;
}

/**
 * cxr_store_merge:
 * @store: the store merged into (locked by the caller)
 * @source_path: a store, e.g. one shard's; locked while it is read
 * @run_id: the merge's run, recorded with the source
 * @sum: (out caller-allocates): init with cxr_merge_summary_init()
 *
 * Merges @source_path into @store in one transaction (see the top of this
 * file); a source unchanged since it was last merged is skipped
 * (@sum->skipped). Conflicting films are counted and noted, not errors.
 */
gboolean
cxr_store_merge (CxrStore *store, const char *source_path, gint64 run_id, CxrMergeSummary *sum,
                 GError **error)
{
  g_autofree char *source = g_canonicalize_filename (source_path, NULL);
  g_autofree char *self = g_canonicalize_filename (cxr_store_path (store), NULL);
  /* the same file under another name (a link) is the same store */
  char *real_source = realpath (source, NULL), *real_self = realpath (self, NULL);
  gboolean itself = g_str_equal (source, self)
                    || (real_source && real_self && g_str_equal (real_source, real_self));
  free (real_source);
  free (real_self);
  if (itself)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: a store cannot be merged into itself", source_path);
      return FALSE;
    }
  /* opened read-only (nothing stored in it, a trigger say, can write: it
   * is attached read-only too), so a store on a read-only mount merges;
   * locked like any store being read whole */
  g_autoptr (CxrStore) src
      = cxr_store_open (source, CXR_STORE_READ_ONLY | CXR_STORE_NO_CREATE, error);
  if (src == NULL)
    {
      if (error && *error && g_str_has_prefix ((*error)->message, source))
        g_prefix_error (error, "merge source ");
      return FALSE;
    }
  if (cxr_store_schema_version (src) != cxr_store_latest_version ())
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_SCHEMA_VERSION,
                   "merge source %s: schema version %d, this cxrtrack's is %d; a source is read"
                   " as it is, never migrated: open it once with this cxrtrack first"
                   " (cxrtrack sql --write --db %s 'PRAGMA user_version')",
                   source_path, cxr_store_schema_version (src), cxr_store_latest_version (),
                   source_path);
      return FALSE;
    }
  if (!cxr_store_lock (src, "merge (source)", error))
    return FALSE;
  g_autofree char *print = fingerprint (src, error);
  if (print == NULL)
    return FALSE;
  CxrVoi voi_src, voi_dst;
  gboolean dicom_src, dicom_dst;
  if (!cxr_store_dicom_voi (src, &voi_src, &dicom_src, error)
      || !cxr_store_dicom_voi (store, &voi_dst, &dicom_dst, error))
    return FALSE;
  if (dicom_src && dicom_dst && voi_src != voi_dst)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_CONFLICT,
                   "%s: its DICOM films were read with --voi %s, this store's with --voi %s:"
                   " one store, one window",
                   source_path, cxr_voi_name (voi_src), cxr_voi_name (voi_dst));
      return FALSE;
    }
  g_autofree char *src_artifacts = cxr_store_artifacts_dir (src);
  g_autofree char *before
      = query_text (store, "SELECT fingerprint FROM merged_stores WHERE source = ?", source, error);
  if (before == NULL)
    return FALSE;
  if (g_str_equal (before, print))
    {
      sum->skipped = TRUE;
      return TRUE;
    }
  if (!cxr__store_attach (store, source, "src", "attaching the store to merge", error))
    return FALSE;
  gboolean ok = cxr_store_begin (store, error);
  if (ok && merge_attached (store, source, src_artifacts, print, run_id, sum, error))
    ok = cxr_store_commit (store, error);
  else if (ok)
    {
      /* the message names the store merged into: say which source */
      g_prefix_error (error, "merging %s: ", source_path);
      cxr_store_rollback (store);
      ok = FALSE;
    }
  cxr_store_exec (store, "DETACH DATABASE src", NULL);
  return ok;
}

/**
 * cxr_store_has_model:
 * @known: (out): whether @store has results of the model whose weights
 * hash to @sha256 (classifier or lung segmenter)
 */
gboolean
cxr_store_has_model (CxrStore *store, const char *sha256, gboolean *known, GError **error)
{
  g_autofree char *v = query_text (store, "SELECT 'y' FROM models WHERE sha256 = ?", sha256, error);
  if (v == NULL)
    return FALSE;
  *known = *v == 'y';
  return TRUE;
}
