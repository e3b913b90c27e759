/* SPDX-License-Identifier: MIT
 *
 * Classifier runtime: parity with PyTorch (tools/make_model_fixtures.py)
 * for torchvision's DenseNet-121 and cxrtrack's small DenseNet, and a clear
 * CXR_ERROR_MODEL for every kind of broken model file. The weights are a
 * function of tensor name and index, generated here exactly as the Python
 * script does, written to a safetensors file and loaded back.
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
#include "safetensors-private.h"
#include "testutil.h"

static guint32
fnv1a (const char *s)
{
  guint32 h = 0x811C9DC5u;
  for (; *s; s++)
    h = (h ^ (guint8) *s) * 0x01000193u;
  return h;
}

static float
unif (guint32 seed, guint32 i)
{
  guint32 x = seed ^ (i * 0x9E3779B9u);
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return (float) (x >> 8) * (1.0f / 16777216.0f);
}

/* The value rules of make_model_fixtures.py. */
static float *
make_values (const char *name, int ndim, const gint64 *shape, gsize *n_out)
{
  gsize n = 1, fan_in = 1;
  for (int d = 0; d < ndim; d++)
    n *= (gsize) shape[d];
  for (int d = 1; d < ndim; d++)
    fan_in *= (gsize) shape[d];
  float *v = g_new (float, n);
  guint32 seed = fnv1a (name);
  gboolean bn_weight = g_str_has_suffix (name, ".weight") && ndim == 1;
  float a = (float) sqrt (6.0 / (double) fan_in);
  for (gsize i = 0; i < n; i++)
    {
      float f = unif (seed, (guint32) i);
      if (g_str_has_suffix (name, "running_var") || bn_weight)
        v[i] = 0.5f + f;
      else if (g_str_has_suffix (name, "bias") || g_str_has_suffix (name, "running_mean"))
        v[i] = (2.0f * f - 1.0f) * 0.1f;
      else
        v[i] = (2.0f * f - 1.0f) * a;
    }
  *n_out = n;
  return v;
}

typedef enum { INTACT, DROP_ONE, MISSHAPE_ONE, EXTRA_ONE } Damage;

/* Writes the fixture's architecture as a safetensors file. */
static char *
write_model (JsonObject *fx, Damage damage)
{
  JsonArray *tensors = json_object_get_array_member (fx, "tensors");
  guint n = json_array_get_length (tensors);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *data = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *shapes = g_ptr_array_new_with_free_func (g_free);
  GArray *ndims = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i < n; i++)
    {
      if (damage == DROP_ONE && i == n / 2)
        continue;
      JsonArray *e = json_array_get_array_element (tensors, i);
      const char *name = json_array_get_string_element (e, 0);
      JsonArray *sh = json_array_get_array_element (e, 1);
      int nd = (int) json_array_get_length (sh);
      gint64 *shape = g_new (gint64, MAX (nd, 1));
      for (int d = 0; d < nd; d++)
        shape[d] = json_array_get_int_element (sh, (guint) d);
      if (damage == MISSHAPE_ONE && i == n / 2)
        shape[0] += 1;
      gsize cnt;
      g_ptr_array_add (data, make_values (name, nd, shape, &cnt));
      g_ptr_array_add (names, g_strdup (name));
      g_ptr_array_add (shapes, shape);
      g_array_append_val (ndims, nd);
    }
  if (damage == EXTRA_ONE)
    {
      gint64 *shape = g_new (gint64, 1);
      shape[0] = 3;
      int nd = 1;
      gsize cnt;
      g_ptr_array_add (data, make_values ("extra.weight", 1, shape, &cnt));
      g_ptr_array_add (names, g_strdup ("extra.weight"));
      g_ptr_array_add (shapes, shape);
      g_array_append_val (ndims, nd);
    }
  g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *size
      = g_strdup_printf ("%" G_GINT64_FORMAT, json_object_get_int_member (fx, "input_size"));
  GString *cls = g_string_new (NULL);
  JsonArray *ca = json_object_get_array_member (fx, "classes");
  for (guint i = 0; i < json_array_get_length (ca); i++)
    g_string_append_printf (cls, "%s%s", i ? "|" : "", json_array_get_string_element (ca, i));
  g_hash_table_insert (meta, "architecture",
                       (gpointer) json_object_get_string_member (fx, "architecture"));
  g_hash_table_insert (meta, "input_size", size);
  g_hash_table_insert (meta, "classes", cls->str);
  g_autofree char *path = g_strdup_printf (
      "%s/%s-%d.safetensors", tmpdir, json_object_get_string_member (fx, "architecture"), damage);
  g_autoptr (GError) err = NULL;
  assert_true (cxr__safetensors_write (
      path, meta, names->len, (const char *const *) names->pdata, (const int *) ndims->data,
      (const gint64 *const *) shapes->pdata, (const float *const *) data->pdata, &err));
  g_string_free (cls, TRUE);
  g_ptr_array_unref (names);
  g_ptr_array_unref (data);
  g_ptr_array_unref (shapes);
  g_array_unref (ndims);
  return g_steal_pointer (&path);
}

static JsonParser *
load_fixture (const char *arch)
{
  g_autofree char *p = g_strdup_printf ("%s/model/%s.json", g_getenv ("CXR_TEST_DATA"), arch);
  JsonParser *parser = json_parser_new ();
  g_autoptr (GError) err = NULL;
  if (!json_parser_load_from_file (parser, p, &err))
    fail_msg ("%s: %s", p, err->message);
  return parser;
}

static double
max_abs (JsonArray *a)
{
  double m = 0;
  for (guint i = 0; i < json_array_get_length (a); i++)
    m = fmax (m, fabs (json_array_get_double_element (a, i)));
  return m;
}

static void
check_parity (const char *arch)
{
  g_autoptr (JsonParser) parser = load_fixture (arch);
  JsonObject *fx = json_node_get_object (json_parser_get_root (parser));
  g_autofree char *path = write_model (fx, INTACT);
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrModel) m = cxr_model_load (path, &err);
  if (m == NULL)
    fail_msg ("%s", err->message);
  assert_string_equal (cxr_model_architecture (m), arch);
  assert_int_equal (cxr_model_n_classes (m), 14);
  assert_string_equal (cxr_model_class_name (m, 2), "Effusion");
  assert_int_equal (strlen (cxr_model_sha256 (m)), 64);
  JsonArray *inputs = json_object_get_array_member (fx, "inputs");
  double worst_p = 0, worst_e = 0, worst_c = 0;
  for (guint k = 0; k < json_array_get_length (inputs); k++)
    {
      JsonArray *in = json_array_get_array_element (inputs, k);
      guint n = json_array_get_length (in);
      g_autofree float *x = g_new (float, n);
      for (guint i = 0; i < n; i++)
        x[i] = (float) json_array_get_double_element (in, i);
      g_autoptr (CxrPrediction) p = cxr_model_forward (m, x);
      JsonArray *prob
          = json_array_get_array_element (json_object_get_array_member (fx, "probability"), k);
      JsonArray *emb
          = json_array_get_array_element (json_object_get_array_member (fx, "embedding"), k);
      JsonArray *cam = json_array_get_array_element (json_object_get_array_member (fx, "cam"), k);
      assert_int_equal (p->dim, (int) json_array_get_length (emb));
      assert_int_equal ((gsize) p->n_classes * p->map_w * p->map_h, json_array_get_length (cam));
      for (int c = 0; c < p->n_classes; c++)
        worst_p = fmax (worst_p,
                        fabs (p->probability[c] - json_array_get_double_element (prob, (guint) c)));
      double se = max_abs (emb), sc = max_abs (cam);
      for (int i = 0; i < p->dim; i++)
        worst_e = fmax (
            worst_e, fabs (p->embedding[i] - json_array_get_double_element (emb, (guint) i)) / se);
      for (guint i = 0; i < json_array_get_length (cam); i++)
        worst_c = fmax (worst_c, fabs (p->cam[i] - json_array_get_double_element (cam, i)) / sc);
    }
  print_message ("%s: max |dp| %.2e, embedding rel %.2e, cam rel %.2e\n", arch, worst_p, worst_e,
                 worst_c);
  /* Targets of the classifier-runtime issue. */
  assert_true (worst_p <= 1e-4);
  assert_true (worst_e <= 1e-3);
  assert_true (worst_c <= 1e-3);
}

static void
test_parity_densenet121 (void **state)
{
  check_parity ("densenet121");
}

static void
test_parity_small (void **state)
{
  check_parity ("cxr-densenet-small");
}

static void
expect_model_error (const char *path, const char *needle)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrModel) m = cxr_model_load (path, &err);
  assert_null (m);
  if (err == NULL || !g_error_matches (err, CXR_ERROR, CXR_ERROR_MODEL)
      || strstr (err->message, needle) == NULL)
    fail_msg ("%s: got '%s', want CXR_ERROR_MODEL with '%s'", path, err ? err->message : "no error",
              needle);
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
    { "model_no_metadata", "__metadata__ needs architecture, input_size and classes" },
    { "model_unknown_arch", "unknown architecture 'resnet50'" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    {
      g_autofree char *p
          = g_strdup_printf ("%s/bad/%s.safetensors", g_getenv ("CXR_TEST_DATA"), v[i].file);
      expect_model_error (p, v[i].msg);
    }
}

static void
test_damaged_architecture (void **state)
{
  g_autoptr (JsonParser) parser = load_fixture ("cxr-densenet-small");
  JsonObject *fx = json_node_get_object (json_parser_get_root (parser));
  g_autofree char *drop = write_model (fx, DROP_ONE);
  expect_model_error (drop, "missing tensor 'features.denseblock");
  g_autofree char *shape = write_model (fx, MISSHAPE_ONE);
  expect_model_error (shape, "has shape [");
  g_autofree char *extra = write_model (fx, EXTRA_ONE);
  expect_model_error (extra, "1 tensors that cxr-densenet-small does not have");
  g_autoptr (GError) err = NULL;
  assert_null (cxr_model_load ("/nonexistent.safetensors", &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_IO));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_bad_files),
    cmocka_unit_test (test_damaged_architecture),
    cmocka_unit_test (test_parity_small),
    cmocka_unit_test (test_parity_densenet121),
  };
  return cmocka_run_group_tests (tests, tmpdir_setup, tmpdir_teardown);
}
