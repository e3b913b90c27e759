/* SPDX-License-Identifier: MIT
 *
 * Store: migrations (fresh, upgrade, failed migration rolled back, newer
 * database refused), read-only mode, and the patient_series view.
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

static void
test_patient_series_view (void **state)
{
  g_autofree char *p = db_path ("series.sqlite");
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrStore) s = cxr_store_open (p, 0, &err);
  assert_non_null (s);
  /* visit 0 lateral, 1 PA, 2 invalid AP, 3 lateral, 4 AP */
  assert_true (cxr_store_exec (
      s,
      "INSERT INTO patients (patient_id) VALUES ('p');"
      "INSERT INTO scans (scan_id, image_index, patient_id, visit, view_kind, status, sha256) VALUES"
      " (10, 'a', 'p', 0, 'lateral', 'ok', 'h'), (11, 'b', 'p', 1, 'PA', 'ok', 'h'),"
      " (12, 'c', 'p', 2, 'AP', 'invalid', NULL), (13, 'd', 'p', 3, 'lateral', 'ok', 'h'),"
      " (14, 'e', 'p', 4, 'AP', 'ok', 'h');",
      &err));
  assert_int_equal (query_int (s, "SELECT baseline_scan_id FROM patient_series WHERE scan_id = 14"),
                    11);
  assert_int_equal (query_int (s, "SELECT previous_scan_id FROM patient_series WHERE scan_id = 14"),
                    11);
  assert_int_equal (
      query_int (s, "SELECT previous_scan_id IS NULL FROM patient_series WHERE scan_id = 11"), 1);
  assert_int_equal (query_int (s, "SELECT is_frontal FROM patient_series WHERE scan_id = 13"), 0);
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
  };
  return cmocka_run_group_tests (tests, tmpdir_setup, tmpdir_teardown);
}
