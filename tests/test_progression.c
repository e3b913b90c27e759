/* SPDX-License-Identifier: MIT
 *
 * Progression (progression.c): each kind of series classified as the top
 * of the file says, and the flags of a store's patients written from
 * their predictions and embeddings, with the time axis, the event visit
 * and evidence that names the films.
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

static CxrProgressionOptions opt;

static CxrTrendKind
classify (const double *y, int n, double limit, gboolean from_baseline, CxrTrendResult *r)
{
  double t[16];
  for (int i = 0; i < n; i++)
    t[i] = i;
  cxr_progression_classify (t, y, n, limit, opt.acute_factor * limit, from_baseline, &opt, r);
  return r->kind;
}

static void
test_classify (void **state)
{
  CxrTrendResult r;
  /* a steady rise, no step standing out: slow; the event is the first
   * film beyond the limit from the first, confirmed by the next */
  const double slow[] = { 0.10, 0.14, 0.18, 0.22, 0.26, 0.30 };
  assert_int_equal (classify (slow, 6, 0.05, FALSE, &r), CXR_TREND_SLOW_PROGRESSION);
  assert_int_equal (r.event_index, 2);
  assert_true (r.p_value < 0.01 && r.tau > 0.99);
  assert_true (fabs (r.slope - 0.04) < 1e-9);
  /* one step carrying the change, confirmed by the film after it */
  const double step[] = { 0.10, 0.11, 0.60, 0.62, 0.61 };
  assert_int_equal (classify (step, 5, 0.05, FALSE, &r), CXR_TREND_ACUTE_CHANGE);
  assert_int_equal (r.acute_index, 2);
  /* a one-film spike that the next film does not confirm is not acute */
  const double spike[] = { 0.10, 0.11, 0.60, 0.12, 0.11, 0.10 };
  assert_int_equal (classify (spike, 6, 0.05, FALSE, &r), CXR_TREND_STABLE);
  assert_int_equal (r.acute_index, -1);
  /* a steady fall */
  const double fall[] = { 0.50, 0.45, 0.40, 0.35, 0.30, 0.25 };
  assert_int_equal (classify (fall, 6, 0.05, FALSE, &r), CXR_TREND_IMPROVING);
  /* too few films for the test to reach alpha, and no lasting event */
  const double few[] = { 0.10, 0.12, 0.14, 0.16 };
  assert_int_equal (classify (few, 4, 0.05, FALSE, &r), CXR_TREND_STABLE);
  assert_true (isnan (r.p_value) || !r.by_event);
  /* two films: insufficient, unless the step stands out (unconfirmed) */
  assert_int_equal (classify (few, 2, 0.05, FALSE, &r), CXR_TREND_INSUFFICIENT_VISITS);
  const double jump2[] = { 0.10, 0.40 };
  assert_int_equal (classify (jump2, 2, 0.05, FALSE, &r), CXR_TREND_UNCONFIRMED_CHANGE);
  /* from the baseline, the first film does not count for the test: four
   * films after it cannot reach alpha, but beyond the limit from the
   * first on and to the last is a lasting event */
  const double dist[] = { 0, 0.02, 0.04, 0.06, 0.08 };
  assert_int_equal (classify (dist, 5, 0.01, TRUE, &r), CXR_TREND_SLOW_PROGRESSION);
  assert_true (r.by_event && r.event_index == 1);
  /* a significant rise that stays within the limit is not progression */
  const double tiny[] = { 0.100, 0.101, 0.102, 0.103, 0.104, 0.105 };
  assert_int_equal (classify (tiny, 6, 0.05, FALSE, &r), CXR_TREND_STABLE);
}

/* Adds patient @pid with n PA films whose Effusion probability is y[i]
 * (every other finding 0.1) and whose embedding turns by angle[i]. */
static void
add_patient (CxrStore *s, const CxrModel *m, const char *pid, int n, const double *y,
             const double *angle, gboolean days)
{
  GString *q = g_string_new ("BEGIN;");
  g_string_append_printf (
      q, "INSERT INTO patients (patient_id, n_scans, n_frontal) VALUES ('%s', %d, %d);", pid, n, n);
  for (int i = 0; i < n; i++)
    {
      g_string_append_printf (q,
                              "INSERT INTO scans (image_index, patient_id, visit, day_offset,"
                              " view_kind, status, sha256) VALUES ('%s_%d.png', '%s', %d, %s, 'PA',"
                              " 'ok', 'x');",
                              pid, i, pid, i, days ? "0" : "NULL");
      for (int c = 0; c < cxr_model_n_classes (m); c++)
        {
          const char *f = cxr_model_class_name (m, c);
          g_string_append_printf (q,
                                  "INSERT INTO predictions SELECT scan_id, 1, '%s', %.17g FROM"
                                  " scans WHERE image_index = '%s_%d.png';",
                                  f, g_str_equal (f, "Effusion") ? y[i] : 0.1, pid, i);
        }
      float v[2] = { (float) cos (angle[i]), (float) sin (angle[i]) };
      const guint8 *b = (const guint8 *) v;
      g_string_append (
          q, "INSERT INTO embeddings (scan_id, model_id, dim, vector) SELECT scan_id, 1, 2, x'");
      for (int k = 0; k < 8; k++)
        g_string_append_printf (q, "%02x", b[k]);
      g_string_append_printf (q, "' FROM scans WHERE image_index = '%s_%d.png';", pid, i);
    }
  g_string_append (q, "COMMIT;");
  g_autoptr (GError) err = NULL;
  if (!cxr_store_exec (s, q->str, &err))
    fail_msg ("%s", err->message);
  g_string_free (q, TRUE);
}

static char *
flag_of (CxrStore *s, const char *pid, const char *signal, const char *col)
{
  g_autofree char *q = g_strdup_printf ("SELECT %s FROM progression_flags WHERE patient_id = '%s'"
                                        " AND signal = '%s'",
                                        col, pid, signal);
  return query_text (s, q);
}

/* "PAIRS LIMIT" of @signal's visit-to-visit limit, rounded to 4 places. */
static char *
visit_limit_of (CxrStore *s, const char *signal)
{
  g_autofree char *q = g_strdup_printf ("SELECT visit_pairs || ' ' || round(visit_limit, 4) FROM"
                                        " retest_limits WHERE signal = '%s'",
                                        signal);
  return query_text (s, q);
}

/* A new store @name in the test folder with model 1 and the test-retest
 * limits @limits (SQL values for model_id, signal, limit_value, n_copies,
 * method). */
static CxrStore *
flag_store (const char *name, const char *limits)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *db = g_build_filename (tmpdir, name, NULL);
  CxrStore *s = cxr_store_open (db, 0, &err);
  assert_non_null (s);
  g_autofree char *sql = g_strconcat (
      "INSERT INTO models (model_id, name, architecture, sha256, classes, input_size,"
      " embedding_dim) VALUES (1, 'm', 'a', 'h', 'c', 224, 2);"
      "INSERT INTO retest_limits (model_id, signal, limit_value, n_copies, method) VALUES ",
      limits, NULL);
  if (!cxr_store_exec (s, sql, &err))
    fail_msg ("%s", err->message);
  return s;
}

static CxrModel *
default_model (void)
{
  g_autofree char *mp
      = g_build_filename (g_getenv ("CXR_SOURCE_ROOT"), "models", "cxr-default.safetensors", NULL);
  g_autoptr (GError) err = NULL;
  CxrModel *m = cxr_model_load (mp, &err);
  assert_non_null (m);
  return m;
}

static void
test_flag_all (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrModel) m = default_model ();
  g_autoptr (CxrStore) s = flag_store ("flags.sqlite", "(1, 'probability:Effusion', 0.05, 40, 't'),"
                                                       " (1, 'embedding_distance', 0.01, 40, 't')");
  const double rise[] = { 0.10, 0.14, 0.18, 0.22, 0.26, 0.30 }, zero[6] = { 0 };
  const double turn[] = { 0, 0.1, 0.2, 0.3, 0.4, 0.5 };
  const double last[] = { 0.10, 0.10, 0.60 };
  const double flat[] = { 0.20, 0.21, 0.20, 0.21, 0.20 };
  add_patient (s, m, "A", 6, rise, turn, TRUE);
  add_patient (s, m, "B", 3, last, zero, FALSE);
  add_patient (s, m, "C", 5, flat, zero, TRUE);
  assert_true (cxr_store_exec (
      s, "UPDATE scans SET day_offset = 10 * visit WHERE day_offset IS NOT NULL", &err));
  gint64 run = cxr_store_run_begin (s, "test", NULL, &err);
  guint64 flagged = 0;
  if (!cxr_progression_flag_all (s, m, 1, &opt, run, &flagged, &err))
    fail_msg ("%s", err->message);
  assert_int_equal (flagged, 2);
  /* the signals without limits are not flagged at all */
  assert_int_equal (query_int (s, "SELECT count(*) FROM progression_flags"), 6);

  g_autofree char *ak = flag_of (s, "A", "probability:Effusion", "kind");
  assert_string_equal (ak, "slow_progression");
  g_autofree char *aaxis = flag_of (s, "A", "probability:Effusion", "time_axis");
  assert_string_equal (aaxis, "days");
  g_autofree char *aev = flag_of (s, "A", "probability:Effusion", "event_visit");
  assert_string_equal (aev, "2");
  g_autofree char *aslope = flag_of (s, "A", "probability:Effusion", "round(slope, 6)");
  assert_string_equal (aslope, "0.004"); /* per day */
  g_autofree char *atext = flag_of (s, "A", "probability:Effusion", "evidence");
  assert_non_null (strstr (atext, "Effusion probability rose from 0.1 to 0.3 over 6 PA films"));
  assert_non_null (strstr (atext, "from A_2.png on, confirmed"));
  assert_non_null (strstr (atext, "films A_0.png to A_5.png"));
  /* the embedding turns steadily away from the first film */
  g_autofree char *ae = flag_of (s, "A", "embedding_distance", "kind");
  assert_string_equal (ae, "slow_progression");

  /* a jump at the latest film: no later film confirms it yet */
  g_autofree char *bk = flag_of (s, "B", "probability:Effusion", "kind");
  assert_string_equal (bk, "unconfirmed_change");
  g_autofree char *bs
      = flag_of (s, "B", "probability:Effusion", "step_from_visit || '->' || step_to_visit");
  assert_string_equal (bs, "1->2");
  g_autofree char *baxis = flag_of (s, "B", "probability:Effusion", "time_axis");
  assert_string_equal (baxis, "visit");
  /* three films: no trend test can say anything (no p-value); the step does */
  g_autofree char *bp = flag_of (s, "B", "probability:Effusion", "p_value IS NULL");
  assert_string_equal (bp, "1");
  g_autofree char *btext = flag_of (s, "B", "probability:Effusion", "evidence");
  assert_non_null (
      strstr (btext, "a step of 0.5 from B_1.png to B_2.png, the latest film, exceeded the acute"
                     " limit 0.25: no later film confirms it yet"));

  g_autofree char *ck = flag_of (s, "C", "probability:Effusion", "kind");
  assert_string_equal (ck, "stable");
  g_autofree char *ce = flag_of (s, "C", "embedding_distance", "kind");
  assert_string_equal (ce, "stable");
  /* 11 consecutive pairs: too few for a visit-to-visit limit */
  g_autofree char *vl
      = query_text (s, "SELECT visit_pairs || ' ' || (visit_limit IS NULL) FROM retest_limits"
                       " WHERE signal = 'probability:Effusion'");
  assert_string_equal (vl, "11 1");
  g_autofree char *src = flag_of (s, "A", "probability:Effusion", "limit_source");
  assert_string_equal (src, "retest");

  /* flags are recomputed, not added: a second pass leaves the same rows */
  assert_true (cxr_progression_flag_all (s, m, 1, &opt, run, &flagged, &err));
  assert_int_equal (query_int (s, "SELECT count(*) FROM progression_flags"), 6);
}

/* With enough consecutive pairs the store's own visit-to-visit spread
 * sets the limit when it is wider than the re-posed copies': a patient
 * whose Effusion swings 0.2 <-> 0.4 from film to film over 31 films and
 * one whose rises 0.04 a film give 35 changes (15 of -0.2, 15 of +0.2,
 * 5 of +0.04): median 0.04, absolute deviations 0.24, 0.16 and 0, MAD
 * 0.16, a limit of 1.96 x 1.4826 x 0.16 = 0.4649; then the second
 * patient's rise of 0.2 over six films is within what visits do.
 *
 * The embedding distance from the first film is compared with its limit
 * as it is, so its limit is that of the distances (median + 1.96 x
 * 1.4826 x MAD), not of their consecutive differences: D's later films
 * lie 0.10 from its first (alternately either side of it), E's 0.08, so
 * the limit is 0.10 and E is stable. From the differences (all 0 but the
 * first of each series) the limit would be 0 and E, closer to its first
 * film than D's films are to theirs, a slow progression. */
static void
test_visit_limits (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrModel) m = default_model ();
  g_autoptr (CxrStore) s
      = flag_store ("visits.sqlite", "(1, 'probability:Effusion', 0.05, 40, 't'),"
                                     " (1, 'embedding_distance', 0.01, 40, 't')");
  double swing[31], turn[31] = { 0 }, aside[6] = { 0 };
  for (int i = 0; i < 31; i++)
    swing[i] = i % 2 ? 0.4 : 0.2;
  for (int i = 1; i < 31; i++)
    turn[i] = (i % 2 ? 1 : -1) * acos (0.90);
  for (int i = 1; i < 6; i++)
    aside[i] = acos (0.92);
  const double rise[] = { 0.10, 0.14, 0.18, 0.22, 0.26, 0.30 };
  add_patient (s, m, "D", 31, swing, turn, FALSE);
  add_patient (s, m, "E", 6, rise, aside, FALSE);
  gint64 run = cxr_store_run_begin (s, "test", NULL, &err);
  guint64 flagged = 0;
  if (!cxr_progression_flag_all (s, m, 1, &opt, run, &flagged, &err))
    fail_msg ("%s", err->message);
  g_autofree char *vl = visit_limit_of (s, "probability:Effusion");
  assert_string_equal (vl, "35 0.4649");
  g_autofree char *el = visit_limit_of (s, "embedding_distance");
  assert_string_equal (el, "35 0.1");
  const struct {
    const char *pid, *signal, *col, *want;
  } rows[] = {
    { "E", "probability:Effusion", "kind", "stable" },
    { "E", "probability:Effusion", "limit_source", "visits" },
    { "E", "probability:Effusion", "round(retest_limit, 4)", "0.4649" },
    { "E", "embedding_distance", "kind", "stable" },
    { "D", "embedding_distance", "kind", "stable" },
  };
  for (guint k = 0; k < G_N_ELEMENTS (rows); k++)
    {
      g_autofree char *got = flag_of (s, rows[k].pid, rows[k].signal, rows[k].col);
      if (g_strcmp0 (got, rows[k].want) != 0)
        fail_msg ("%s %s %s: %s, expected %s", rows[k].pid, rows[k].signal, rows[k].col, got,
                  rows[k].want);
    }
}

static int
setup (void **state)
{
  cxr_progression_options_init (&opt);
  return tmpdir_setup (state);
}

/* cxrtrack's reference limits: a good file read, each broken one refused
 * with its file and line (calibrate.c, cxr__reference_load). */
static void
test_reference_file (void **state)
{
  const char *head = "# classifier_sha256: "
                     "3884912929ed2ee267624a9383dd18bed1447743456844c25f3cc2322a70410b\n"
                     "# films: 170\n# min_films: 40\n";
  const char *cols = "signal,limit_value,n_copies,visit_limit,visit_pairs\n";
  const char *row = "embedding_distance,0.14,340,0.19,210\ntrend_score,1,340,,\n";
  g_autofree char *good = g_strconcat (head, cols, row, NULL);
  g_autofree char *gp = g_build_filename (tmpdir, "good.csv", NULL);
  assert_true (g_file_set_contents (gp, good, -1, NULL));
  g_autoptr (GError) err = NULL;
  assert_true (cxr_progression_check_reference (gp, &err));
  struct {
    const char *text, *want;
  } bad[] = {
    /* no header: the first row is line 4 */
    { "# classifier_sha256: 3884912929ed2ee267624a9383dd18bed1447743456844c25f3cc2322a70410b\n"
      "# films: 170\n# min_films: 40\nembedding_distance,0.14,340,0.19,210\n",
      ":4: wanted the header" },
    { NULL, ":5: wanted signal" }, /* four columns */
    { NULL, ":5: wanted signal" }, /* a limit of 0 */
    { NULL, ":5: wanted signal" }, /* no copies */
    { NULL, ":5: wanted signal" }, /* a visit limit that is not a number */
    { "# films: 170\n# min_films: 40\nsignal,limit_value,n_copies,visit_limit,visit_pairs\n"
      "trend_score,1,340,,\n",
      ":0: needs '# classifier_sha256:'" },
    { NULL, ":0: needs" }, /* min_films 1 */
    { NULL, ":2: min_films is not a number" },
    { NULL, ":0: needs" }, /* no films line */
    { NULL, ":0: needs" }, /* no rows */
  };
  const char *rows[]
      = { "embedding_distance,0.14,340,0.19\n", "embedding_distance,0,340,0.19,210\n",
          "embedding_distance,0.14,,0.19,210\n", "embedding_distance,0.14,340,x,210\n" };
  for (guint i = 1; i <= 4; i++)
    bad[i].text = g_strconcat (head, cols, rows[i - 1], NULL);
  bad[6].text = g_strconcat ("# classifier_sha256: "
                             "3884912929ed2ee267624a9383dd18bed1447743456844c25f3cc2322a70410b\n"
                             "# films: 170\n# min_films: 1\n",
                             cols, row, NULL);
  bad[7].text = g_strconcat ("# films: 170\n# min_films: forty\n", cols, row, NULL);
  bad[8].text = g_strconcat ("# classifier_sha256: "
                             "3884912929ed2ee267624a9383dd18bed1447743456844c25f3cc2322a70410b\n"
                             "# min_films: 40\n",
                             cols, row, NULL);
  bad[9].text = g_strconcat (head, cols, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *name = g_strdup_printf ("bad%u.csv", i);
      g_autofree char *p = g_build_filename (tmpdir, name, NULL);
      assert_true (g_file_set_contents (p, bad[i].text, -1, NULL));
      g_clear_error (&err);
      if (cxr_progression_check_reference (p, &err))
        fail_msg ("bad reference %u read", i);
      if (!strstr (err->message, name) || !strstr (err->message, bad[i].want))
        fail_msg ("bad reference %u: '%s', wanted '%s'", i, err->message, bad[i].want);
      if (i >= 1 && i != 5)
        g_free ((char *) bad[i].text);
    }
  /* larger than 1 MiB, and absent */
  g_autofree char *big = g_malloc0 ((1 << 20) + 2);
  memset (big, '#', (1 << 20) + 1);
  g_autofree char *bp = g_build_filename (tmpdir, "big.csv", NULL);
  assert_true (g_file_set_contents (bp, big, -1, NULL));
  g_clear_error (&err);
  assert_false (cxr_progression_check_reference (bp, &err));
  assert_non_null (strstr (err->message, "larger than 1 MiB"));
  g_autofree char *none = g_build_filename (tmpdir, "none.csv", NULL);
  g_clear_error (&err);
  assert_false (cxr_progression_check_reference (none, &err));
  assert_non_null (strstr (err->message, "none.csv"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_classify),
    cmocka_unit_test (test_flag_all),
    cmocka_unit_test (test_visit_limits),
    cmocka_unit_test (test_reference_file),
  };
  return cmocka_run_group_tests (tests, setup, tmpdir_teardown);
}
