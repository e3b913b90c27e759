/* SPDX-License-Identifier: MIT
 *
 * The analysis pipeline (pipeline.c) through the library: a patient whose
 * visits are re-posed copies of one real film registers ok with the poses
 * it was made with and chains within a pixel; a second run finds nothing
 * to do; an unreadable film is a failed row with the reason, not a failed
 * run; with maps and the default model, every pair gets its map files and
 * every film its prediction, and the flags are made; a store whose
 * artifacts folder cannot be made fails cleanly (and leaks nothing under
 * the sanitizer build).
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

/* Visit v of the patient: the sample film re-posed by poses[v] (the
 * convention of register.h: registering it to visit 0 reports the pose). */
static const double poses[3][4] = { { 0, 0, 0, 1 }, { 12, -7, 2, 1.02 }, { -9, 15, -3, 0.98 } };

static void
write_visit (const char *dir, int v)
{
  g_autofree char *src = g_build_filename (g_getenv ("CXR_SOURCE_ROOT"), "sample", "images",
                                           "00001543_004.png", NULL);
  g_autoptr (CxrImage) im = cxr_image_load (src, NULL, NULL, NULL);
  assert_non_null (im);
  double dx = poses[v][0], dy = poses[v][1], th = poses[v][2] * G_PI / 180, s = poses[v][3];
  /* cxr_register_warp samples its input at T(p): warp by the inverse */
  CxrRegistration inv = { 0 };
  inv.scale = 1 / s;
  inv.angle_deg = -poses[v][2];
  inv.dx_px = -(cos (th) * dx + sin (th) * dy) / s;
  inv.dy_px = -(-sin (th) * dx + cos (th) * dy) / s;
  g_autoptr (CxrImage) out = cxr_register_warp (im, &inv, im->width, im->height);
  g_autofree char *name = g_strdup_printf ("v%d.png", v);
  g_autofree char *path = g_build_filename (dir, name, NULL);
  assert_true (cxr_image_save_png (out, path, 1, NULL));
}

/* A store in its own folder with the three visits ingested. */
static CxrStore *
make_store (const char *name, char **dir_out)
{
  g_autofree char *dir = g_build_filename (tmpdir, name, NULL);
  assert_int_equal (g_mkdir_with_parents (dir, 0700), 0);
  GString *m = g_string_new ("patient_id,path,visit,view_position,pixel_spacing_mm\n");
  for (int v = 0; v < 3; v++)
    {
      write_visit (dir, v);
      g_string_append_printf (m, "P,v%d.png,%d,PA,0.4\n", v, v);
    }
  g_autofree char *csv = g_build_filename (dir, "m.csv", NULL);
  assert_true (g_file_set_contents (csv, m->str, -1, NULL));
  g_string_free (m, TRUE);
  g_autofree char *db = g_build_filename (dir, "s.sqlite", NULL);
  g_autoptr (GError) err = NULL;
  CxrStore *s = cxr_store_open (db, 0, &err);
  assert_non_null (s);
  CxrIngestOptions io;
  cxr_ingest_options_init (&io);
  CxrIngestSummary is;
  cxr_ingest_summary_init (&is);
  assert_true (cxr_ingest_manifest (s, csv, &io, &is, &err));
  assert_int_equal (is.n_ok, 3);
  cxr_ingest_summary_clear (&is);
  if (dir_out)
    *dir_out = g_steal_pointer (&dir);
  return s;
}

static gboolean
analyze (CxrStore *s, const CxrModel *model, gboolean maps, CxrAnalyzeSummary *sum, GError **error)
{
  CxrAnalyzeOptions o;
  cxr_analyze_options_init (&o);
  o.jobs = 2;
  o.model = model;
  o.no_diff = !maps;
  cxr_analyze_summary_init (sum);
  return cxr_pipeline_analyze (s, &o, sum, error);
}

static void
test_register_and_resume (void **state)
{
  g_autoptr (CxrStore) s = make_store ("resume", NULL);
  CxrAnalyzeSummary sum;
  g_autoptr (GError) err = NULL;
  assert_true (analyze (s, NULL, FALSE, &sum, &err));
  assert_int_equal (sum.n_patients, 1);
  assert_int_equal (sum.n_pairs, 4); /* 0->1 (previous and baseline), 1->2, 0->2 */
  assert_int_equal (sum.n_ok, 4);
  cxr_analyze_summary_clear (&sum);
  /* each baseline row reports its visit's pose (the copies are of one film) */
  for (int v = 1; v < 3; v++)
    {
      g_autofree char *q = g_strdup_printf (
          "SELECT r.dx_px, r.dy_px, r.angle_deg, r.scale FROM registrations r"
          " JOIN scans m ON m.scan_id = r.moving_scan_id WHERE r.kind = 'baseline'"
          " AND m.image_index = 'v%d.png'",
          v);
      FirstRow r;
      query_first_row (s, q, &r);
      for (int k = 0; k < 4; k++)
        if (fabs (r.real[k] - poses[v][k]) > (k == 3 ? 0.002 : k == 2 ? 0.05 : 0.3))
          fail_msg ("visit %d parameter %d: %g, made with %g", v, k, r.real[k], poses[v][k]);
      first_row_clear (&r);
    }
  /* visit 2's chains were checked, and compose */
  assert_int_equal (query_int (s, "SELECT count(*) FROM registrations WHERE transitivity_px < 1"),
                    2);
  /* nothing left to do; no row made twice */
  assert_true (analyze (s, NULL, FALSE, &sum, &err));
  assert_int_equal (sum.n_patients, 0);
  assert_int_equal (sum.n_pairs, 0);
  cxr_analyze_summary_clear (&sum);
  assert_int_equal (query_int (s, "SELECT count(*) FROM registrations"), 4);
  assert_int_equal (query_int (s, "SELECT count(*) FROM runs WHERE command = 'analyze'"
                                  " AND status = 'done' AND n_rows IN (0, 4)"),
                    2);
}

static void
test_unreadable_film (void **state)
{
  g_autofree char *dir = NULL;
  g_autoptr (CxrStore) s = make_store ("unreadable", &dir);
  g_autofree char *v2 = g_build_filename (dir, "v2.png", NULL);
  assert_true (g_file_set_contents (v2, "not a png", -1, NULL));
  CxrAnalyzeSummary sum;
  g_autoptr (GError) err = NULL;
  assert_true (analyze (s, NULL, FALSE, &sum, &err));
  assert_int_equal (sum.n_pairs, 4);
  assert_int_equal (sum.n_failed, 2);
  gboolean named = FALSE;
  for (guint i = 0; i < sum.messages->len; i++)
    named = named || strstr (sum.messages->pdata[i], "v2.png") != NULL;
  assert_true (named);
  cxr_analyze_summary_clear (&sum);
  assert_int_equal (query_int (s, "SELECT count(*) FROM registrations r JOIN scans m"
                                  " ON m.scan_id = r.moving_scan_id WHERE m.image_index = 'v2.png'"
                                  " AND r.status = 'failed' AND r.dx_px IS NULL"
                                  " AND r.reason LIKE '%v2.png%'"),
                    2);
}

static void
test_maps_and_model (void **state)
{
  g_autofree char *dir = NULL;
  g_autoptr (CxrStore) s = make_store ("maps", &dir);
  g_autofree char *mp
      = g_build_filename (g_getenv ("CXR_SOURCE_ROOT"), "models", "cxr-default.safetensors", NULL);
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrModel) model = cxr_model_load (mp, &err);
  assert_non_null (model);
  CxrAnalyzeSummary sum;
  assert_true (analyze (s, model, TRUE, &sum, &err));
  assert_int_equal (sum.n_inferred, 3);
  assert_int_equal (sum.n_diffs, 3); /* 0->1 serves both kinds */
  cxr_analyze_summary_clear (&sum);
  int nc = cxr_model_n_classes (model);
  assert_int_equal (query_int (s, "SELECT count(*) FROM predictions"), 3 * nc);
  assert_int_equal (query_int (s, "SELECT count(*) FROM pair_changes"), 4);
  assert_int_equal (query_int (s, "SELECT count(*) FROM pair_finding_changes"), 4 * nc);
  /* copies of one film: nothing changed beyond the noise of re-posing */
  assert_true (query_int (s, "SELECT max(changed_area_mm2) FROM pair_changes") < 500);
  /* every map file is where its row says, relative to the store's
   * artifacts folder, and named after its two films */
  FirstRow r;
  query_first_row (s,
                   "SELECT map_path, overlay_path, map_scale FROM pair_changes"
                   " WHERE kind = 'previous' ORDER BY map_path DESC LIMIT 1",
                   &r);
  assert_string_equal (r.text[0], "pairs/v1.png+v2.png.map.png");
  assert_int_equal (r.type[1], CXR_VALUE_NULL); /* drawn from the map when shown */
  assert_true (r.real[2] > 0);
  {
    g_autofree char *f = g_build_filename (dir, "s.sqlite.artifacts", r.text[0], NULL);
    assert_true (g_file_test (f, G_FILE_TEST_IS_REGULAR));
    int w, h;
    g_autofree float *map = cxr_diff_read_map (f, r.real[2], &w, &h, NULL);
    assert_non_null (map);
    assert_int_equal (MAX (w, h), 512);
  }
  first_row_clear (&r);
  assert_true (query_int (s, "SELECT count(*) FROM retest_limits") >= nc + 1);
  /* 3 PA films: each signal of the series is classified */
  assert_int_equal (query_int (s, "SELECT count(*) FROM progression_flags WHERE patient_id = 'P'"
                                  " AND view_kind = 'PA' AND n_visits = 3"),
                    query_int (s, "SELECT count(*) FROM retest_limits"));
}

static void
test_artifacts_blocked (void **state)
{
  g_autofree char *dir = NULL;
  g_autoptr (CxrStore) s = make_store ("blocked", &dir);
  /* a file where the artifacts folder would go */
  g_autofree char *blocker = g_build_filename (dir, "s.sqlite.artifacts", NULL);
  assert_true (g_file_set_contents (blocker, "x", -1, NULL));
  CxrAnalyzeSummary sum;
  g_autoptr (GError) err = NULL;
  assert_false (analyze (s, NULL, TRUE, &sum, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_IO));
  assert_non_null (strstr (err->message, "s.sqlite.artifacts"));
  cxr_analyze_summary_clear (&sum);
  assert_int_equal (query_int (s, "SELECT count(*) FROM registrations"), 0);
  assert_int_equal (query_int (s, "SELECT count(*) FROM runs WHERE command = 'analyze'"
                                  " AND status = 'failed'"),
                    1);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_register_and_resume),
    cmocka_unit_test (test_unreadable_film),
    cmocka_unit_test (test_maps_and_model),
    cmocka_unit_test (test_artifacts_blocked),
  };
  return cmocka_run_group_tests (tests, tmpdir_setup, tmpdir_teardown);
}
