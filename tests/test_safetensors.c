/* SPDX-License-Identifier: MIT
 *
 * safetensors: what is written reads back (values, shapes, metadata, the
 * file's SHA-256), float16 tensors convert exactly, and every broken file
 * gets a CXR_ERROR_MODEL that names the file and what is wrong, before
 * any tensor is handed out.
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
#include "safetensors-private.h"
#include "testutil.h"

static void
test_round_trip (void **state)
{
  g_autofree char *path = g_build_filename (tmpdir, "rt.safetensors", NULL);
  float a[6] = { 1, -2, 3.5f, 0, 1e-30f, 65504 }, b[1] = { 42 };
  const float *data[] = { a, b };
  const char *names[] = { "w.a", "b" };
  const int nd[] = { 2, 1 };
  const gint64 sa[] = { 2, 3 }, sb[] = { 1 };
  const gint64 *shapes[] = { sa, sb };
  g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (meta, "architecture", "x");
  g_autoptr (GError) err = NULL;
  assert_true (cxr__safetensors_write (path, meta, 2, names, nd, shapes, data, &err));

  g_autoptr (CxrSafetensors) st = cxr_safetensors_open (path, &err);
  assert_non_null (st);
  assert_int_equal (cxr_safetensors_n_tensors (st), 2);
  assert_string_equal (cxr_safetensors_metadata (st, "architecture"), "x");
  assert_null (cxr_safetensors_metadata (st, "nothing"));
  assert_null (cxr_safetensors_get (st, "w.b"));
  const CxrTensorInfo *t = cxr_safetensors_get (st, "w.a");
  assert_non_null (t);
  assert_int_equal (t->dtype, CXR_DTYPE_F32);
  assert_int_equal (t->ndim, 2);
  assert_int_equal (t->shape[0], 2);
  assert_int_equal (t->shape[1], 3);
  assert_int_equal (t->numel, 6);
  float out[6];
  assert_true (cxr_safetensors_read_f32 (st, t, out));
  assert_memory_equal (out, a, sizeof a);
  /* the SHA-256 of the whole file, as sha256sum gives it */
  g_autofree char *bytes = NULL;
  gsize len;
  assert_true (g_file_get_contents (path, &bytes, &len, NULL));
  g_autofree char *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guint8 *) bytes, len);
  assert_string_equal (cxr_safetensors_sha256 (st), sha);
}

static void
test_half_floats (void **state)
{
  assert_true (cxr__half_to_float (0x3C00) == 1.0f);
  assert_true (cxr__half_to_float (0xC000) == -2.0f);
  assert_true (cxr__half_to_float (0x7BFF) == 65504.0f);
  assert_true (cxr__half_to_float (0x0001) == ldexpf (1.0f, -24)); /* smallest subnormal */
  assert_true (isinf (cxr__half_to_float (0x7C00)));
  assert_true (isnan (cxr__half_to_float (0x7E00)));
  /* an F16 tensor reads back as these floats */
  const guint8 half[] = { 0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0x00, 0x80 };
  g_autofree char *p = write_safetensors_raw (
      "f16.safetensors", "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", half,
      sizeof half);
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrSafetensors) st = cxr_safetensors_open (p, &err);
  assert_non_null (st);
  const CxrTensorInfo *t = cxr_safetensors_get (st, "h");
  assert_int_equal (t->dtype, CXR_DTYPE_F16);
  float v[4];
  assert_true (cxr_safetensors_read_f32 (st, t, v));
  assert_true (v[0] == 1.0f && v[1] == -2.0f && v[2] == ldexpf (1.0f, -24));
  assert_true (v[3] == 0.0f && signbit (v[3]));
}

static void
expect_error (const char *path, const char *needle)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrSafetensors) st = cxr_safetensors_open (path, &err);
  assert_null (st);
  if (err == NULL || !g_error_matches (err, CXR_ERROR, CXR_ERROR_MODEL)
      || strstr (err->message, needle) == NULL || strstr (err->message, path) == NULL)
    fail_msg ("%s: got '%s', want CXR_ERROR_MODEL with the path and '%s'", path,
              err ? err->message : "no error", needle);
}

static void
test_bad_files (void **state)
{
  static const struct {
    const char *file, *msg;
  } v[] = {
    { "model_short", "too short for a safetensors header" },
    { "model_header_past_end", "header length 1048576 runs past the end of the file" },
    { "model_not_json", "header is not JSON" },
    { "model_bad_dtype", "tensor 'x': dtype I64 is not supported" },
    { "model_overlap", "tensors 'a' and 'b' overlap" },
    { "model_offset_past_end", "tensor 'b': data ends at byte 32 past the end of the data" },
    { "model_size_mismatch", "tensor 'a': 8 bytes for shape of 4 F32 elements (16 bytes)" },
    { "model_absurd_shape", "tensor 'a': element count overflows" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    {
      g_autofree char *p
          = g_strdup_printf ("%s/bad/%s.safetensors", g_getenv ("CXR_TEST_DATA"), v[i].file);
      expect_error (p, v[i].msg);
    }
  /* a negative dimension, and an offset pair that runs backwards */
  g_autofree char *neg = write_safetensors_raw (
      "neg.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
      (const guint8 *) "abcd", 4);
  expect_error (neg, "tensor 'a'");
  g_autofree char *back = write_safetensors_raw (
      "back.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}",
      (const guint8 *) "abcd", 4);
  expect_error (back, "tensor 'a'");
  g_autoptr (GError) err = NULL;
  assert_null (cxr_safetensors_open ("/nonexistent.safetensors", &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_IO));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_round_trip),
    cmocka_unit_test (test_half_floats),
    cmocka_unit_test (test_bad_files),
  };
  return cmocka_run_group_tests (tests, tmpdir_setup, tmpdir_teardown);
}
