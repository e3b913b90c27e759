/* SPDX-License-Identifier: MIT
 *
 * The SQL functions over embedding BLOBs (sqlfunc.c): cosine_distance and
 * l2_distance on known vectors, NULL for NULL and for a zero vector,
 * errors for other types and lengths, and agreement with the C function
 * the pipeline uses on the same vectors.
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

static CxrStore *
open_store (const char *name)
{
  g_autofree char *p = g_build_filename (tmpdir, name, NULL);
  g_autoptr (GError) err = NULL;
  CxrStore *s = cxr_store_open (p, 0, &err);
  assert_non_null (s);
  return s;
}

static void
test_known_vectors (void **state)
{
  g_autoptr (CxrStore) s = open_store ("known.sqlite");
  /* float32 little-endian: (1, 0) = 0000803f 00000000, (0, 2) = 00000000 00000040,
   * (3, 4) = 00004040 00008040, (-1, 0) = 000080bf 00000000 */
  FirstRow r;
  query_first_row (s,
                   "SELECT cosine_distance(x'0000803f00000000', x'0000000000000040'),"
                   " cosine_distance(x'0000803f00000000', x'0000404000000000'),"
                   " l2_distance(x'0000000000000000', x'0000404000008040'),"
                   " cosine_distance(NULL, x'0000803f'), cosine_distance(x'00000000', x'00000000'),"
                   " cosine_distance(x'0000803f00000000', x'000080bf00000000'),"
                   " l2_distance(x'0000803f', NULL), cosine_distance(x'', x'')",
                   &r);
  assert_true (fabs (r.real[0] - 1.0) < 1e-12); /* orthogonal */
  assert_true (fabs (r.real[1]) < 1e-12);       /* parallel */
  assert_true (fabs (r.real[2] - 5.0) < 1e-6);  /* 3-4-5 */
  assert_int_equal (r.type[3], CXR_VALUE_NULL);
  assert_int_equal (r.type[4], CXR_VALUE_NULL); /* zero vector: no direction */
  assert_true (fabs (r.real[5] - 2.0) < 1e-12); /* opposite */
  assert_int_equal (r.type[6], CXR_VALUE_NULL);
  assert_int_equal (r.type[7], CXR_VALUE_NULL); /* empty: zero too */
  first_row_clear (&r);
}

static void
test_errors (void **state)
{
  g_autoptr (CxrStore) s = open_store ("errors.sqlite");
  g_autoptr (GError) err = NULL;
  assert_false (cxr_store_exec (s, "SELECT l2_distance(x'0000803f', x'0000803f00000000')", &err));
  assert_non_null (strstr (err->message, "different lengths"));
  g_clear_error (&err);
  assert_false (cxr_store_exec (s, "SELECT cosine_distance(x'0000803f00', x'0000803f00')", &err));
  assert_non_null (strstr (err->message, "different lengths"));
  g_clear_error (&err);
  assert_false (cxr_store_exec (s, "SELECT cosine_distance('abcd', x'0000803f')", &err));
  assert_non_null (strstr (err->message, "float32 BLOBs"));
}

/* The SQL function and cxr_model_cosine_distance give the same value on
 * the same vectors (embeddings are stored as host-order float32). */
static void
test_same_as_c (void **state)
{
  g_autoptr (CxrStore) s = open_store ("same.sqlite");
  GRand *rng = g_rand_new_with_seed (7);
  for (int trial = 0; trial < 20; trial++)
    {
      int n = g_rand_int_range (rng, 1, 300);
      g_autofree float *a = g_new (float, n), *b = g_new (float, n);
      for (int i = 0; i < n; i++)
        {
          a[i] = (float) g_rand_double_range (rng, -1, 1);
          b[i] = trial % 3 == 0 ? a[i] * 2 : (float) g_rand_double_range (rng, -1, 1);
        }
      GString *q = g_string_new ("SELECT cosine_distance(x'");
      for (int i = 0; i < 4 * n; i++)
        g_string_append_printf (q, "%02x", ((guint8 *) a)[i]);
      g_string_append (q, "', x'");
      for (int i = 0; i < 4 * n; i++)
        g_string_append_printf (q, "%02x", ((guint8 *) b)[i]);
      g_string_append (q, "')");
      FirstRow r;
      query_first_row (s, q->str, &r);
      double c = cxr_model_cosine_distance (a, b, n, 1);
      assert_true (fabs (r.real[0] - c) < 1e-12);
      first_row_clear (&r);
      g_string_free (q, TRUE);
    }
  g_rand_free (rng);
  const float zero[3] = { 0 }, one[3] = { 1, 0, 0 };
  assert_true (isnan (cxr_model_cosine_distance (zero, one, 3, 1)));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_known_vectors),
    cmocka_unit_test (test_errors),
    cmocka_unit_test (test_same_as_c),
  };
  return cmocka_run_group_tests (tests, tmpdir_setup, tmpdir_teardown);
}
