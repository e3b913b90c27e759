/* SPDX-License-Identifier: MIT
 *
 * Store: migrations (fresh, upgrade, failed migration rolled back, newer
 * database refused), read-only mode, the patient_series,
 * pair_probability_change and pair_probability_deltas views.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "cxr/cxr.h"
#include "testutil.h"

static char *
db_path (const char *name)
{
  return g_build_filename (tmpdir, name, NULL);
}

static void
test_fresh (void **state)
{
  g_autofree char *p = db_path ("fresh.sqlite");
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrStore) s = cxr_store_open (p, CXR_STORE_READ_WRITE, &err);
  assert_non_null (s);
  assert_true (cxr_store_latest_version () >= 1);
  assert_int_equal (cxr_store_schema_version (s), cxr_store_latest_version ());
  assert_int_equal (query_int (s, "PRAGMA user_version"), cxr_store_latest_version ());
  assert_int_equal (query_int (s, "PRAGMA foreign_keys"), 1);
  assert_int_equal (query_int (s, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                  "('patients','scans','scan_findings','runs','patient_series')"),
                    5);
  /* Foreign keys are enforced: a scan needs its patient. */
  assert_false (cxr_store_exec (s,
                                "INSERT INTO scans (image_index, patient_id, view_kind, status)"
                                " VALUES ('x.png', 'nobody', 'PA', 'missing')",
                                &err));
  assert_non_null (strstr (err->message, "FOREIGN KEY"));
}

static const char *const m1 = "CREATE TABLE t (a INTEGER);";
static const char *const m2 = "ALTER TABLE t ADD COLUMN b TEXT; CREATE TABLE u (x);";

static void
test_upgrade_keeps_data (void **state)
{
  g_autofree char *p = db_path ("up.sqlite");
  g_autoptr (GError) err = NULL;
  const char *v1[] = { m1 };
  CxrStore *s = cxr_store_open_with_migrations (p, 0, v1, 1, &err);
  assert_non_null (s);
  assert_true (cxr_store_exec (s, "INSERT INTO t VALUES (42)", &err));
  cxr_store_free (s);

  const char *v2[] = { m1, m2 };
  s = cxr_store_open_with_migrations (p, 0, v2, 2, &err);
  assert_non_null (s);
  assert_int_equal (cxr_store_schema_version (s), 2);
  assert_int_equal (query_int (s, "SELECT a FROM t WHERE b IS NULL"), 42);
  assert_int_equal (query_int (s, "SELECT count(*) FROM u"), 0);
  cxr_store_free (s);
}

static void
test_failed_migration_rolls_back (void **state)
{
  g_autofree char *p = db_path ("fail.sqlite");
  g_autoptr (GError) err = NULL;
  const char *bad[] = { m1, "CREATE TABLE half (x); THIS IS NOT SQL;" };
  CxrStore *s = cxr_store_open_with_migrations (p, 0, bad, 2, &err);
  assert_null (s);
  assert_non_null (strstr (err->message, "migration 2"));
  g_clear_error (&err);
  const char *v1[] = { m1 };
  s = cxr_store_open_with_migrations (p, 0, v1, 1, &err);
  assert_non_null (s);
  assert_int_equal (cxr_store_schema_version (s), 1);
  assert_int_equal (query_int (s, "SELECT count(*) FROM sqlite_master WHERE name = 'half'"), 0);
  cxr_store_free (s);
}

static void
test_newer_refused (void **state)
{
  g_autofree char *p = db_path ("new.sqlite");
  g_autoptr (GError) err = NULL;
  CxrStore *s = cxr_store_open (p, 0, &err);
  assert_non_null (s);
  assert_true (cxr_store_exec (s, "PRAGMA user_version = 999", &err));
  cxr_store_free (s);
  s = cxr_store_open (p, 0, &err);
  assert_null (s);
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_SCHEMA_VERSION));
  assert_non_null (strstr (err->message, "schema version 999"));
  g_clear_error (&err);
  assert_null (cxr_store_open (p, CXR_STORE_READ_ONLY, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_SCHEMA_VERSION));
}

static void
test_not_a_database (void **state)
{
  g_autofree char *p = db_path ("junk.sqlite");
  assert_true (
      g_file_set_contents (p, "this is not sqlite, it is plain text of some length...", -1, NULL));
  g_autoptr (GError) err = NULL;
  assert_null (cxr_store_open (p, 0, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_DB));
  assert_non_null (strstr (err->message, "junk.sqlite"));
}

static void
test_read_only (void **state)
{
  g_autofree char *p = db_path ("ro.sqlite");
  g_autoptr (GError) err = NULL;
  cxr_store_free (cxr_store_open (p, 0, &err));
  g_autoptr (CxrStore) s = cxr_store_open (p, CXR_STORE_READ_ONLY, &err);
  assert_non_null (s);
  assert_false (cxr_store_exec (s, "INSERT INTO patients (patient_id) VALUES ('p')", &err));
  assert_non_null (err);
  g_autofree char *missing = db_path ("absent.sqlite");
  g_clear_error (&err);
  assert_null (cxr_store_open (missing, CXR_STORE_READ_ONLY, &err));
  assert_false (g_file_test (missing, G_FILE_TEST_EXISTS));
}

/* A fresh store @name holding patient 'p' and the rows of @sql. */
static CxrStore *
store_with (const char *name, const char *sql)
{
  g_autofree char *p = db_path (name);
  g_autoptr (GError) err = NULL;
  CxrStore *s = cxr_store_open (p, 0, &err);
  assert_non_null (s);
  assert_true (cxr_store_exec (s, "INSERT INTO patients (patient_id) VALUES ('p')", &err));
  if (!cxr_store_exec (s, sql, &err))
    fail_msg ("%s", err->message);
  return s;
}

static void
test_patient_series_view (void **state)
{
  /* visit 0 lateral, 1 PA, 2 invalid AP, 3 lateral, 4 AP */
  g_autoptr (CxrStore) s = store_with (
      "series.sqlite",
      "INSERT INTO scans (scan_id, image_index, patient_id, visit, view_kind, status, sha256) VALUES"
      " (10, 'a', 'p', 0, 'lateral', 'ok', 'h'), (11, 'b', 'p', 1, 'PA', 'ok', 'h'),"
      " (12, 'c', 'p', 2, 'AP', 'invalid', NULL), (13, 'd', 'p', 3, 'lateral', 'ok', 'h'),"
      " (14, 'e', 'p', 4, 'AP', 'ok', 'h');");
  assert_int_equal (query_int (s, "SELECT baseline_scan_id FROM patient_series WHERE scan_id = 14"),
                    11);
  assert_int_equal (query_int (s, "SELECT previous_scan_id FROM patient_series WHERE scan_id = 14"),
                    11);
  assert_int_equal (
      query_int (s, "SELECT previous_scan_id IS NULL FROM patient_series WHERE scan_id = 11"), 1);
  assert_int_equal (query_int (s, "SELECT is_frontal FROM patient_series WHERE scan_id = 13"), 0);
}

/* pair_probability_change: the largest |delta| in units of each finding's
 * limit (the larger of retest and visit-to-visit, as the flags use), not
 * the largest |delta|. Pneumonia moves most (0.20), against its visit
 * limit 0.25 (0.8 limits; 5 against its retest limit alone); Cardiomegaly
 * moves 0.05 against its retest limit 0.0125 (4 limits) and is the one
 * named. A finding without a limit (Hernia) is left out; a store without
 * limits has no rows. */
static void
test_pair_probability_change_view (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrStore) s = store_with (
      "probchange.sqlite",
      "INSERT INTO scans (scan_id, image_index, patient_id, visit, view_kind, status, sha256) VALUES"
      " (1, 'a', 'p', 0, 'PA', 'ok', 'h1'), (2, 'b', 'p', 1, 'PA', 'ok', 'h2');"
      "INSERT INTO models (model_id, name, architecture, sha256, classes, input_size,"
      " embedding_dim) VALUES (7, 'm', 'x', 's', 'Pneumonia|Cardiomegaly|Mass|Hernia', 256, 4);"
      "INSERT INTO predictions VALUES (1, 7, 'Pneumonia', 0.10), (2, 7, 'Pneumonia', 0.30),"
      " (1, 7, 'Cardiomegaly', 0.40), (2, 7, 'Cardiomegaly', 0.35),"
      " (1, 7, 'Mass', 0.02), (2, 7, 'Mass', 0.03), (1, 7, 'Hernia', 0.0), (2, 7, 'Hernia', 0.9);"
      "INSERT INTO pair_signals (fixed_scan_id, moving_scan_id, kind, model_id,"
      " max_abs_probability_delta) VALUES (1, 2, 'previous', 7, 0.9);");
  assert_int_equal (query_int (s, "SELECT count(*) FROM pair_probability_change"), 0);
  assert_true (cxr_store_exec (s,
                               "INSERT INTO retest_limits (model_id, signal, limit_value, n_copies,"
                               " method, visit_limit) VALUES"
                               " (7, 'probability:Pneumonia', 0.04, 40, 't', 0.25),"
                               " (7, 'probability:Cardiomegaly', 0.0125, 40, 't', 0.01),"
                               " (7, 'probability:Mass', 0.01, 40, 't', NULL)",
                               &err));
  g_autofree char *f = query_text (s, "SELECT finding FROM pair_probability_change");
  assert_string_equal (f, "Cardiomegaly");
  g_autofree char *src = query_text (s, "SELECT limit_source FROM pair_probability_change");
  assert_string_equal (src, "retest");
  assert_int_equal (query_int (s, "SELECT round(change_in_limits * 1000) FROM"
                                  " pair_probability_change"),
                    4000);
  assert_int_equal (query_int (s, "SELECT round(delta * 1000) FROM pair_probability_change"), -50);
  assert_int_equal (query_int (s, "SELECT round(limit_value * 10000) FROM"
                                  " pair_probability_change WHERE fixed_scan_id = 1"
                                  " AND moving_scan_id = 2 AND kind = 'previous' AND model_id = 7"),
                    125);
  /* every finding with a limit, each in its own: Pneumonia 0.2 / 0.25,
   * Cardiomegaly -0.05 / 0.0125, Mass 0.01 / 0.01 (Hernia has no limit),
   * largest first */
  g_autofree char *all
      = query_text (s, "SELECT group_concat(finding || ' ' || round(in_limits, 2), ', ') FROM"
                       " (SELECT * FROM pair_probability_deltas ORDER BY in_limits DESC)");
  assert_string_equal (all, "Cardiomegaly 4.0, Mass 1.0, Pneumonia 0.8");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_fresh),
    cmocka_unit_test (test_upgrade_keeps_data),
    cmocka_unit_test (test_failed_migration_rolls_back),
    cmocka_unit_test (test_newer_refused),
    cmocka_unit_test (test_not_a_database),
    cmocka_unit_test (test_read_only),
    cmocka_unit_test (test_patient_series_view),
    cmocka_unit_test (test_pair_probability_change_view),
  };
  return cmocka_run_group_tests (tests, tmpdir_setup, tmpdir_teardown);
}
