/* SPDX-License-Identifier: MIT
 *
 * Reports (report.c, report-html.c, report-json.c): a patient analysed
 * with the default model, rendered as JSON (every section, the values the
 * store holds) and as HTML (the same flags, films, trends and pairs, the
 * pictures inline, text escaped); the cohort index links the page; a
 * patient the store does not have and a folder that cannot be written
 * are clear errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "cxr/cxr.h"
#include "testutil.h"

static CxrStore *store;

/* Patient 1's three films from sample/ and one missing between them,
 * analysed; one flag set by hand and a view position that must be
 * escaped. */
static int
setup (void **state)
{
  tmpdir_setup (state);
  const char *root = g_getenv ("CXR_SOURCE_ROOT");
  g_autofree char *csv = g_build_filename (tmpdir, "m.csv", NULL);
  g_autofree char *text = g_strdup_printf (
      "patient_id,path,visit,view_position,finding_labels,pixel_spacing_mm\n"
      "1,%s/sample/images/00000001_000.png,0,PA,Cardiomegaly,0.4\n"
      "1,%s/sample/images/00000001_001.png,1,PA,Cardiomegaly|Emphysema,0.4\n"
      "1,%s/sample/images/00000001_009.png,2,PA,Cardiomegaly,0.4\n"
      "1,%s/sample/images/00000001_002.png,3,PA <i>x</i>,Cardiomegaly|Effusion,0.4\n"
      "2,%s/sample/images/00001543_000.png,0,AP,No Finding,0.4\n",
      root, root, root, root, root);
  assert_true (g_file_set_contents (csv, text, -1, NULL));
  g_autofree char *db = g_build_filename (tmpdir, "r.sqlite", NULL);
  g_autoptr (GError) err = NULL;
  store = cxr_store_open (db, 0, &err);
  CxrIngestOptions io;
  cxr_ingest_options_init (&io);
  CxrIngestSummary is;
  cxr_ingest_summary_init (&is);
  assert_true (cxr_ingest_manifest (store, csv, &io, &is, &err));
  cxr_ingest_summary_clear (&is);
  g_autofree char *mp = g_build_filename (root, "models", "cxr-default.safetensors", NULL);
  g_autoptr (CxrModel) model = cxr_model_load (mp, &err);
  assert_non_null (model);
  CxrAnalyzeOptions ao;
  cxr_analyze_options_init (&ao);
  ao.model = model;
  CxrAnalyzeSummary as;
  cxr_analyze_summary_init (&as);
  if (!cxr_pipeline_analyze (store, &ao, &as, &err))
    fail_msg ("%s", err->message);
  cxr_analyze_summary_clear (&as);
  assert_true (cxr_store_exec (store, "UPDATE progression_flags SET kind = 'stable'", &err));
  assert_true (cxr_store_exec (store,
                               "UPDATE progression_flags SET kind = 'slow_progression',"
                               " evidence = 'rose <fast> & far' WHERE patient_id = '1'"
                               " AND signal = 'probability:Effusion'",
                               &err));
  return 0;
}

static int
teardown (void **state)
{
  cxr_store_free (store);
  return tmpdir_teardown (state);
}

static JsonObject *
load_json (JsonParser *parser, const char *path)
{
  g_autoptr (GError) err = NULL;
  assert_true (json_parser_load_from_file (parser, path, &err));
  return json_node_get_object (json_parser_get_root (parser));
}

static void
test_json (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *path = cxr_report_patient (store, "1", tmpdir, CXR_REPORT_JSON, NULL, &err);
  assert_non_null (path);
  assert_true (g_str_has_suffix (path, "/patient_1.json"));
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o = load_json (parser, path);
  assert_string_equal (json_object_get_string_member (o, "patient_id"), "1");
  assert_string_equal (json_object_get_string_member (o, "model"), "cxr-default");
  /* what a verdict cannot rule out travels with it */
  JsonObject *sum = json_object_get_object_member (o, "summary");
  assert_non_null (strstr (json_object_get_string_member (sum, "detection_limits"),
                           "do not mean that nothing changed"));
  JsonArray *films = json_object_get_array_member (o, "films");
  assert_int_equal (json_array_get_length (films), 4); /* the missing one too */
  assert_string_equal (
      json_object_get_string_member (json_array_get_object_element (films, 2), "status"),
      "missing");
  JsonObject *f2 = json_array_get_object_element (films, 3);
  assert_string_equal (json_object_get_string_member (f2, "image_index"), "00000001_002.png");
  assert_string_equal (json_object_get_string_member (f2, "finding_labels"),
                       "Cardiomegaly|Effusion");
  JsonArray *flags = json_object_get_array_member (o, "flags");
  assert_int_equal (json_array_get_length (flags), 1);
  JsonObject *fl = json_array_get_object_element (flags, 0);
  assert_string_equal (json_object_get_string_member (fl, "signal"), "probability:Effusion");
  assert_string_equal (json_object_get_string_member (fl, "evidence"), "rose <fast> & far");
  /* one value per trend film (the readable ones), and the store's values */
  JsonObject *tr = json_object_get_object_member (o, "trends");
  assert_string_equal (json_object_get_string_member (tr, "time_axis"), "visit");
  assert_string_equal (json_object_get_string_member (tr, "view"), "PA");
  JsonArray *tv = json_object_get_array_member (tr, "visits");
  assert_int_equal (json_array_get_length (tv), 3);
  assert_int_equal (json_array_get_int_element (tv, 2), 3);
  assert_false (json_object_has_member (o, "other_view_trends"));
  JsonArray *eff = json_object_get_array_member (tr, "probability:Effusion");
  assert_int_equal (json_array_get_length (eff), 3);
  g_autofree char *p2 = query_text (store, "SELECT probability FROM predictions p JOIN scans s"
                                           " USING (scan_id) WHERE image_index = '00000001_002.png'"
                                           " AND finding = 'Effusion'");
  assert_true (fabs (json_array_get_double_element (eff, 2) - g_ascii_strtod (p2, NULL)) < 1e-12);
  JsonArray *emb = json_object_get_array_member (tr, "embedding_distance");
  assert_true (fabs (json_array_get_double_element (emb, 0)) < 1e-6);
  /* the pairs the store holds, with the same numbers */
  JsonArray *pairs = json_object_get_array_member (o, "pairs");
  assert_int_equal (json_array_get_length (pairs),
                    query_int (store, "SELECT count(*) FROM registrations r"
                                      " JOIN scans m ON m.scan_id = r.moving_scan_id"
                                      " WHERE m.patient_id = '1'"));
  JsonObject *p0 = json_array_get_object_element (pairs, 0);
  g_autofree char *dx = query_text (store, "SELECT dx_px FROM registrations r JOIN scans m"
                                           " ON m.scan_id = r.moving_scan_id WHERE m.visit = 1"
                                           " AND m.patient_id = '1' AND r.kind = 'previous'");
  assert_string_equal (json_object_get_string_member (p0, "kind"), "previous");
  assert_true (fabs (json_object_get_double_member (p0, "dx_px") - g_ascii_strtod (dx, NULL))
               < 1e-9);
}

static gsize
count (const char *hay, const char *needle)
{
  gsize n = 0;
  for (const char *p = strstr (hay, needle); p; p = strstr (p + 1, needle))
    n++;
  return n;
}

static void
test_html (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *path = cxr_report_patient (store, "1", tmpdir, CXR_REPORT_HTML, NULL, &err);
  assert_non_null (path);
  g_autofree char *h = NULL;
  assert_true (g_file_get_contents (path, &h, NULL, NULL));
  assert_non_null (strstr (h, "<h1>Patient 1</h1>"));
  assert_int_equal (count (h, "do not mean that nothing changed"), 1);
  /* text from the store is escaped, never markup */
  assert_non_null (strstr (h, "rose &lt;fast&gt; &amp; far"));
  assert_null (strstr (h, "<fast>"));
  assert_null (strstr (h, "<i>x</i>"));
  /* a plot per trend (and a colour scale per change overlay, below), the
   * flagged one marked; a thumbnail per film and two pictures per pair
   * that did not fail (three with its map) */
  assert_int_equal (count (h, "(flagged)"), 1);
  assert_int_equal (count (h, "<figure id=\"film-"), 4);
  /* the missing film is its caption alone, no grey placeholder */
  assert_int_equal (count (h, "class=\"ph\""), 0);
  assert_int_equal (count (h, "<span class=\"badge b-missing\">missing</span>"), 1);
  assert_int_equal (count (h, "<h2 id=\"trends-"), 1);
  /* the flag links the films it was judged on: not the missing one */
  const char *fl = strstr (h, "<div class=\"flag slow_progression\">");
  assert_non_null (fl);
  g_autofree char *flag = g_strndup (fl, strstr (fl, "</div>") - fl);
  assert_int_equal (count (flag, "<a href=\"#film-"), 3);
  g_autofree char *missing = g_strdup_printf (
      "#film-%" G_GINT64_FORMAT "\"",
      (gint64) query_int (store, "SELECT scan_id FROM scans WHERE status = 'missing'"));
  assert_null (strstr (flag, missing));
  /* a baseline registration of the same two films as a previous one
   * (the second film's) is shown once, as "previous and baseline" */
#define ONCE                                                                                       \
  " AND NOT (x.kind = 'baseline' AND EXISTS (SELECT 1 FROM registrations p"                        \
  " WHERE p.fixed_scan_id = x.fixed_scan_id AND p.moving_scan_id = x.moving_scan_id"               \
  " AND p.kind = 'previous'))"
  gsize maps
      = (gsize) query_int (store, "SELECT count(*) FROM pair_changes x JOIN scans m"
                                  " ON m.scan_id = x.moving_scan_id WHERE m.patient_id = '1'" ONCE);
  gsize pairs
      = (gsize) query_int (store, "SELECT count(*) FROM registrations x JOIN scans m"
                                  " ON m.scan_id = x.moving_scan_id WHERE m.patient_id = '1'" ONCE);
  gsize all
      = (gsize) query_int (store, "SELECT count(*) FROM registrations x JOIN scans m"
                                  " ON m.scan_id = x.moving_scan_id WHERE m.patient_id = '1'");
#undef ONCE
  assert_true (pairs < all);
  assert_int_equal (count (h, "alt=\"difference\""), maps);
  assert_int_equal (count (h, "<svg"), 15 + maps);
  assert_int_equal (count (h, "<div class=\"pair\">"), pairs);
  assert_int_equal (count (h, "<b>previous and baseline</b>"), all - pairs);
}

static void
test_index_and_errors (void **state)
{
  g_autoptr (GError) err = NULL;
  CxrReportStats stats = { 0 };
  g_autofree char *dir = g_build_filename (tmpdir, "all", NULL);
  g_mkdir (dir, 0700);
  g_autofree char *index = cxr_report_index (store, dir, TRUE, &stats, &err);
  assert_non_null (index);
  assert_int_equal (stats.n_pages, 1); /* patient 2 has one film: no pair, no page */
  assert_int_equal (stats.n_missing_artifacts, 0);
  assert_int_equal (stats.n_changed_films, 0);
  g_autofree char *h = NULL;
  assert_true (g_file_get_contents (index, &h, NULL, NULL));
  assert_non_null (strstr (h, "<a href=\"patient_1.html\">1</a>"));
  assert_non_null (strstr (h, "<tr><td>2</td>"));
  assert_non_null (strstr (h, "2 patients, 5 films, 1 flagged.")); /* every film row */

  assert_null (cxr_report_patient (store, "nobody", tmpdir, CXR_REPORT_HTML, NULL, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_INVALID_INPUT));
  assert_non_null (strstr (err->message, "no patient 'nobody'"));
  g_clear_error (&err);
  assert_null (cxr_report_patient (store, "1", "/nonexistent/dir", CXR_REPORT_JSON, NULL, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_IO));
  g_clear_error (&err);
  assert_null (cxr_report_index (store, "/nonexistent/dir", TRUE, NULL, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_IO));
  g_clear_error (&err);
  /* a store whose flags, registrations, model or limits cannot be read is
   * an error naming what, not a page without them */
  static const char *const broken[][2] = {
    { "progression_flags", "progression_flags" },
    { "registrations", "registrations" },
    { "retest_limits", "retest_limits" },
    { "models", "models" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (broken); i++)
    {
      g_autofree char *sql = g_strdup_printf ("BEGIN; ALTER TABLE %s RENAME TO gone", broken[i][0]);
      assert_true (cxr_store_exec (store, sql, &err));
      assert_null (cxr_report_patient (store, "1", tmpdir, CXR_REPORT_JSON, NULL, &err));
      assert_non_null (err);
      if (strstr (err->message, broken[i][1]) == NULL)
        fail_msg ("%s unreadable: %s", broken[i][0], err->message);
      g_clear_error (&err);
      assert_true (cxr_store_exec (store, "ROLLBACK", &err));
    }
  g_autofree char *path = cxr_report_patient (store, "1", tmpdir, CXR_REPORT_JSON, NULL, &err);
  assert_non_null (path);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_json),
    cmocka_unit_test (test_html),
    cmocka_unit_test (test_index_and_errors),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
