/* SPDX-License-Identifier: MIT
 *
 * The SQL functions over embedding BLOBs (sqlfunc.c): cosine_distance and
 * l2_distance on known vectors, NULL for NULL and for a zero vector,
 * errors for other types and lengths, and agreement with the C function
 * the pipeline uses on the same vectors; patient_shard and the shard
 * helpers behind --shard.
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

/* The shard of a patient: stable values (a change would move patients
 * between the shards of stores already built), the same in SQL and C,
 * spread evenly, and K/N parsed strictly. */
static void
test_shards (void **state)
{
  /* FNV-1a 64 mod N, plus one: computed apart (Python) */
  assert_int_equal (cxr_patient_shard ("1", 7), 2);
  assert_int_equal (cxr_patient_shard ("00001543", 16), 11);
  assert_int_equal (cxr_patient_shard ("r01_2633", 3), 1);
  assert_int_equal (cxr_patient_shard ("", 5), 3);
  assert_int_equal (cxr_patient_shard ("anything", 1), 1);
  g_autoptr (CxrStore) s = open_store ("shards.sqlite");
  FirstRow r;
  query_first_row (s,
                   "SELECT patient_shard('1', 7), patient_shard('00001543', 16),"
                   " patient_shard(NULL, 3)",
                   &r);
  assert_int_equal ((int) r.real[0], 2);
  assert_int_equal ((int) r.real[1], 11);
  assert_int_equal (r.type[2], CXR_VALUE_NULL);
  first_row_clear (&r);
  int count[4] = { 0 };
  for (int i = 0; i < 4000; i++)
    {
      char id[16];
      g_snprintf (id, sizeof id, "%08d", i);
      count[cxr_patient_shard (id, 4) - 1]++;
    }
  for (int k = 0; k < 4; k++)
    assert_true (count[k] > 900 && count[k] < 1100);
  CxrShard sh;
  assert_true (cxr_shard_parse ("3/8", &sh, NULL));
  assert_int_equal (sh.k, 3);
  assert_int_equal (sh.n, 8);
  assert_true (cxr_shard_contains (&sh, "00001543") == (cxr_patient_shard ("00001543", 8) == 3));
  const char *bad[] = { "0/3", "4/3", "3", "a/b", "1/0", "1/3x", "/3", "1//3", "-1/3", "" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) err = NULL;
      assert_false (cxr_shard_parse (bad[i], &sh, &err));
      assert_non_null (strstr (err->message, "K/N"));
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_known_vectors),
    cmocka_unit_test (test_errors),
    cmocka_unit_test (test_same_as_c),
    cmocka_unit_test (test_shards),
  };
  return cmocka_run_group_tests (tests, tmpdir_setup, tmpdir_teardown);
}
