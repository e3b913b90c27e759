/* SPDX-License-Identifier: MIT
 *
 * Trend statistics against SciPy (tools/trend_reference.py wrote
 * tests/data/trend_reference.json): Mann-Kendall S, variance with ties,
 * tau-b and p-values (exact and approximate), Theil-Sen slope, intercept
 * and interval; event analysis; the visits needed for significance.
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

static double *
doubles (JsonArray *a, int *n)
{
  *n = (int) json_array_get_length (a);
  double *v = g_new (double, *n);
  for (int i = 0; i < *n; i++)
    v[i] = json_array_get_double_element (a, (guint) i);
  return v;
}

#define CLOSE(a, b, tol, what)                                                                     \
  do                                                                                               \
    {                                                                                              \
      if (fabs ((a) - (b)) > (tol) *MAX (1.0, fabs (b)))                                           \
        fail_msg ("%s %s: %.10g, SciPy %.10g", name, what, (double) (a), (double) (b));            \
    }                                                                                              \
  while (0)

static void
test_against_scipy (void **state)
{
  g_autofree char *p = g_build_filename (g_getenv ("CXR_TEST_DATA"), "trend_reference.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  assert_true (json_parser_load_from_file (parser, p, NULL));
  JsonArray *cases = json_node_get_array (json_parser_get_root (parser));
  assert_true (json_array_get_length (cases) >= 7);
  for (guint k = 0; k < json_array_get_length (cases); k++)
    {
      JsonObject *c = json_array_get_object_element (cases, k);
      const char *name = json_object_get_string_member (c, "name");
      int n, m;
      g_autofree double *t = doubles (json_object_get_array_member (c, "t"), &n);
      g_autofree double *y = doubles (json_object_get_array_member (c, "y"), &m);
      CxrMannKendall mk;
      assert_true (cxr_trend_mann_kendall (t, y, n, &mk));
      CLOSE (mk.s, json_object_get_double_member (c, "s"), 0, "S");
      CLOSE (mk.var_s, json_object_get_double_member (c, "var_s"), 1e-12, "Var S");
      CLOSE (mk.tau, json_object_get_double_member (c, "tau"), 1e-9, "tau");
      CLOSE (mk.p_value, json_object_get_double_member (c, "p"), 1e-9, "p");
      assert_int_equal (mk.exact, json_object_get_boolean_member (c, "exact"));
      CxrTheilSen ts;
      assert_true (cxr_trend_theil_sen (t, y, n, 0.95, &ts));
      CLOSE (ts.slope, json_object_get_double_member (c, "slope"), 1e-9, "slope");
      CLOSE (ts.intercept, json_object_get_double_member (c, "intercept"), 1e-9, "intercept");
      CLOSE (ts.low, json_object_get_double_member (c, "low"), 1e-9, "low");
      CLOSE (ts.high, json_object_get_double_member (c, "high"), 1e-9, "high");
    }
}

static void
test_published_example (void **state)
{
  /* Exact null distribution, n = 4: S = 6 only for the one increasing order
   * of 24, so the two-sided p is 2/24 (Kendall 1975, table of S). */
  double t[] = { 1, 2, 3, 4 }, y[] = { 5, 6, 7, 8 };
  CxrMannKendall mk;
  assert_true (cxr_trend_mann_kendall (t, y, 4, &mk));
  assert_true (fabs (mk.p_value - 2.0 / 24) < 1e-12);
  /* n = 5, S = 8: P(S >= 8) = 5/120 (4 inversions-or-fewer counts 1 + 4), two-sided 10/120 */
  double y5[] = { 1, 2, 3, 5, 4 }, t5[] = { 0, 1, 2, 3, 4 };
  assert_true (cxr_trend_mann_kendall (t5, y5, 5, &mk));
  assert_true (mk.s == 8);
  assert_true (fabs (mk.p_value - 10.0 / 120) < 1e-12);
}

static void
test_event_and_limits (void **state)
{
  double rise[] = { 0, 0.02, 0.06, 0.03, 0.07, 0.08, 0.09 };
  assert_int_equal (cxr_trend_event (rise, 7, 0.05, 2), 4); /* 0.06 is not confirmed */
  assert_int_equal (cxr_trend_event (rise, 7, 0.05, 1), 2);
  assert_int_equal (cxr_trend_event (rise, 7, 0.05, 3), 4);
  assert_int_equal (cxr_trend_event (rise, 7, 0.10, 2), -1);
  double fall[] = { 0, -0.1, -0.2, -0.3 };
  assert_int_equal (cxr_trend_event (fall, 4, -0.15, 2), 2);
  /* a perfectly monotone series reaches p < 0.05 (two-sided) first at n = 5 (p = 2/120) */
  assert_int_equal (cxr_trend_min_visits (0.05), 5);
  double t[] = { 1, 1, 2 }, y[] = { 1, 2, 3 };
  CxrMannKendall mk;
  assert_false (cxr_trend_mann_kendall (t, y, 3, &mk)); /* times must increase */
}

static void
test_classify (void **state)
{
  CxrProgressionOptions o;
  cxr_progression_options_init (&o);
  double t[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
  CxrTrendResult r;
  /* creeping up 0.02 a visit with noise: no step beyond 0.06, total 0.14 > 0.05 */
  double slow[8] = { 0.10, 0.13, 0.14, 0.15, 0.19, 0.20, 0.21, 0.24 };
  cxr_progression_classify (t, slow, 8, 0.05, 0.15, 0, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_SLOW_PROGRESSION);
  assert_true (r.p_value < 0.05 && r.slope > 0.015 && r.slope < 0.025);
  assert_int_equal (r.event_index, 4); /* 0.19 - 0.10 > 0.05, and 0.20 confirms */
  /* the same with one jump of 0.2 */
  double jump[8] = { 0.10, 0.11, 0.12, 0.32, 0.33, 0.34, 0.35, 0.36 };
  cxr_progression_classify (t, jump, 8, 0.05, 0.15, 0, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_ACUTE_CHANGE);
  assert_int_equal (r.acute_index, 3);
  /* a significant rise smaller than the test-retest limit is noise */
  double tiny[8] = { 0.100, 0.101, 0.102, 0.103, 0.104, 0.105, 0.106, 0.107 };
  cxr_progression_classify (t, tiny, 8, 0.05, 0.15, 0, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_STABLE);
  double fall[8] = { 0.5, 0.45, 0.42, 0.40, 0.33, 0.30, 0.25, 0.2 };
  cxr_progression_classify (t, fall, 8, 0.05, 0.15, 0, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_IMPROVING);
  /* four films: no trend test, and no event beyond the limit yet */
  cxr_progression_classify (t, slow, 4, 0.05, 0.15, 0, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_STABLE);
  /* two films without a step beyond the acute limit: nothing to tell */
  cxr_progression_classify (t, slow, 2, 0.05, 0.15, 0, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_INSUFFICIENT_VISITS);
  /* four films, beyond the limit from the third on: an event that lasts */
  double lasting[4] = { 0.10, 0.12, 0.19, 0.21 };
  cxr_progression_classify (t, lasting, 4, 0.05, 0.15, 0, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_SLOW_PROGRESSION);
  assert_true (r.by_event && r.event_index == 2);
  /* ... that does not last is not progression */
  double back[4] = { 0.10, 0.17, 0.18, 0.11 };
  cxr_progression_classify (t, back, 4, 0.05, 0.15, 0, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_STABLE);
  /* a one-film spike that the next film does not confirm is not acute */
  double spike[8] = { 0.10, 0.11, 0.40, 0.12, 0.11, 0.12, 0.10, 0.11 };
  cxr_progression_classify (t, spike, 8, 0.05, 0.15, 0, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_STABLE);
  /* at the latest film no later film confirms it yet: unconfirmed */
  double last[8] = { 0.10, 0.11, 0.10, 0.12, 0.11, 0.12, 0.10, 0.40 };
  cxr_progression_classify (t, last, 8, 0.05, 0.15, 0, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_UNCONFIRMED_CHANGE);
  assert_int_equal (r.acute_index, -1);
  assert_int_equal (r.unconfirmed_index, 7);
  /* a distance from the first film that counts change of either sign
   * (the trend score): the growing nodule of bench/progression_synth.py
   * whose first follow-up was noisy. Two-sided, one swap in five keeps it
   * under alpha (p 0.083); its rise, one-sided, is p 0.042. Its fall is
   * never improving. */
  double noisy[6] = { 0, 5.0, 2.3, 5.3, 10.4, 16.9 };
  cxr_progression_classify (t, noisy, 6, 1.0, 3.0, CXR_TREND_FROM_BASELINE, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_STABLE);
  assert_true (fabs (r.p_value - 10.0 / 120) < 1e-9);
  cxr_progression_classify (t, noisy, 6, 1.0, 3.0, CXR_TREND_FROM_BASELINE | CXR_TREND_RISE_ONLY,
                            &o, &r);
  assert_int_equal (r.kind, CXR_TREND_SLOW_PROGRESSION);
  assert_true (fabs (r.p_value - 5.0 / 120) < 1e-9);
  double shrink[6] = { 0, 16.9, 10.4, 5.3, 2.3, 1.5 }; /* no acute step: limit 100 */
  cxr_progression_classify (t, shrink, 6, 1.0, 100, CXR_TREND_FROM_BASELINE, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_IMPROVING);
  cxr_progression_classify (t, shrink, 6, 1.0, 100, CXR_TREND_FROM_BASELINE | CXR_TREND_RISE_ONLY,
                            &o, &r);
  assert_true (r.kind != CXR_TREND_IMPROVING && r.p_value > 0.99);

  /* A distance from the first film: y[0] = 0 is not a measurement. The
   * trend test leaves it out; with it, the noise below would be a
   * significant rise (exact p = 0.030 with the 0 in; 0.136 without, SciPy). */
  double dist[7] = { 0, 0.29, 0.30, 0.31, 0.34, 0.33, 0.32 };
  CxrMannKendall mk;
  assert_true (cxr_trend_mann_kendall (t + 1, dist + 1, 6, &mk));
  assert_true (fabs (mk.p_value - 0.1361111111111111) < 1e-9);
  cxr_progression_classify (t, dist, 7, 0.05, 0.9, TRUE, &o, &r);
  assert_true (fabs (r.p_value - mk.p_value) < 1e-12);
  assert_int_equal (r.kind, CXR_TREND_STABLE);
  cxr_progression_classify (t, dist, 7, 0.05, 0.9, 0, &o, &r);
  assert_true (fabs (r.p_value - 0.03015873015873016) < 1e-9);
  assert_int_equal (r.kind, CXR_TREND_SLOW_PROGRESSION);
  /* A signal whose re-posed copies barely move (limit 1, acute 3): steady
   * growth is slow progression, since no step carries most of the rise... */
  double grow[6] = { 0, 1, 6, 12, 19, 26 };
  cxr_progression_classify (t, grow, 6, 1, 3, TRUE, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_SLOW_PROGRESSION);
  assert_true (r.acute_limit == 13); /* half the largest rise */
  /* ...and one step that does is acute */
  double sudden[6] = { 0, 0, 1, 0, 40, 41 };
  cxr_progression_classify (t, sudden, 6, 1, 3, TRUE, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_ACUTE_CHANGE);
  assert_int_equal (r.acute_index, 4);
  o.acute_share = 0; /* the share off: the multiple of the limit alone */
  cxr_progression_classify (t, grow, 6, 1, 3, TRUE, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_ACUTE_CHANGE);
  o.acute_share = 0.5;
  /* 5 films are 4 after the first: too few for the test to reach 0.05;
   * beyond the limit from the second film to the last, a lasting event */
  cxr_progression_classify (t, dist, 5, 0.05, 0.9, TRUE, &o, &r);
  assert_int_equal (r.kind, CXR_TREND_SLOW_PROGRESSION);
  assert_true (r.by_event);
}

static void
test_config (void **state)
{
  g_autofree char *dir = g_dir_make_tmp ("cxr-cfg-XXXXXX", NULL);
  g_autofree char *good = g_build_filename (dir, "good.ini", NULL);
  g_autofree char *bad = g_build_filename (dir, "bad.ini", NULL);
  g_autofree char *junk = g_build_filename (dir, "junk.ini", NULL);
  assert_true (g_file_set_contents (good, "[progression]\nalpha=0.01\nconfirm=3\n", -1, NULL));
  assert_true (g_file_set_contents (bad, "[progression]\nalpha=2\n", -1, NULL));
  assert_true (g_file_set_contents (junk, "alpha 0.01 without a group\n", -1, NULL));
  CxrProgressionOptions o;
  cxr_progression_options_init (&o);
  g_autoptr (GError) err = NULL;
  assert_true (cxr_progression_load_config (good, &o, &err));
  assert_true (o.alpha == 0.01 && o.confirm == 3 && o.acute_factor == 3.0); /* the rest kept */
  assert_false (cxr_progression_load_config (bad, &o, &err));
  assert_non_null (strstr (err->message, "bad.ini: [progression] alpha must be a number in"));
  assert_true (o.alpha == 0.01);
  g_clear_error (&err);
  /* acute_share is a share: 0..1 */
  assert_true (g_file_set_contents (bad, "[progression]\nacute_share=1.5\n", -1, NULL));
  assert_false (cxr_progression_load_config (bad, &o, &err));
  assert_non_null (strstr (err->message, "acute_share must be a number in 0..1"));
  assert_true (o.acute_share == 0.5);
  g_clear_error (&err);
  assert_true (g_file_set_contents (good, "[progression]\nacute_share=0.25\n", -1, NULL));
  assert_true (cxr_progression_load_config (good, &o, &err));
  assert_true (o.acute_share == 0.25 && o.alpha == 0.01);
  assert_false (cxr_progression_load_config (junk, &o, &err));
  assert_non_null (strstr (err->message, "junk.ini"));
  g_clear_error (&err);
  g_autofree char *absent = g_build_filename (dir, "absent.ini", NULL);
  assert_false (cxr_progression_load_config (absent, &o, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_INVALID_INPUT));
  g_unlink (good);
  g_unlink (bad);
  g_unlink (junk);
  g_rmdir (dir);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_against_scipy),    cmocka_unit_test (test_published_example),
    cmocka_unit_test (test_event_and_limits), cmocka_unit_test (test_classify),
    cmocka_unit_test (test_config),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
