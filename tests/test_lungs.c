/* SPDX-License-Identifier: MIT
 *
 * The lung segmenter (lungs.c): its layers against PyTorch (max pooling,
 * bilinear doubling), a tiny LungNet with random weights and batch-norm
 * statistics against PyTorch's output, the shipped model against
 * PyTorch's on two real NIH films (max |difference| <= 1e-4 on the
 * probabilities; tools/make_lung_fixtures.py wrote the references), the
 * post-processing on real films (two lungs, the patient's right one on the
 * image's left, the film's size), a film with no lungs found implausible,
 * and broken model files refused.
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
#include "nn-private.h"
#include "testutil.h"

static JsonObject *
fixture (JsonParser *parser, const char *name)
{
  g_autofree char *p = g_build_filename (g_getenv ("CXR_TEST_DATA"), "model", name, NULL);
  g_autoptr (GError) err = NULL;
  if (!json_parser_load_from_file (parser, p, &err))
    fail_msg ("%s: %s", p, err->message);
  return json_node_get_object (json_parser_get_root (parser));
}

static float *
floats (JsonObject *o, const char *member, guint *n)
{
  JsonArray *a = json_object_get_array_member (o, member);
  *n = json_array_get_length (a);
  float *v = g_new (float, *n);
  for (guint i = 0; i < *n; i++)
    v[i] = (float) json_array_get_double_element (a, i);
  return v;
}

static void
test_layers (void **state)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o = fixture (parser, "lungs_layers.json");
  guint n_in, n_pool, n_up;
  int c = (int) json_object_get_int_member (o, "c"), n = (int) json_object_get_int_member (o, "n");
  g_autofree float *in = floats (o, "input", &n_in);
  g_autofree float *pool = floats (o, "pool", &n_pool);
  g_autofree float *up = floats (o, "up", &n_up);
  g_autofree float *mine = g_new (float, n_up);
  cxr__max_pool2 (in, c, n, mine);
  for (guint i = 0; i < n_pool; i++)
    assert_true (mine[i] == pool[i]);
  cxr__upsample2 (in, c, n, mine);
  for (guint i = 0; i < n_up; i++)
    if (fabsf (mine[i] - up[i]) > 1e-6f)
      fail_msg ("upsample [%u]: %g, PyTorch %g", i, mine[i], up[i]);
}

static void
test_tiny_net (void **state)
{
  g_autofree char *p
      = g_build_filename (g_getenv ("CXR_TEST_DATA"), "model", "lungnet_tiny.safetensors", NULL);
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrLungModel) m = cxr_lung_model_load (p, &err);
  if (m == NULL)
    fail_msg ("%s", err->message);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o = fixture (parser, "lungnet_tiny.json");
  guint n, np;
  g_autofree float *img = floats (o, "input", &n);
  g_autofree float *ref = floats (o, "prob", &np);
  assert_int_equal (n, 64 * 64);
  for (guint i = 0; i < n; i++)
    img[i] = (img[i] - 0.5f) / 0.25f;
  g_autofree float *prob = cxr_lung_model_forward (m, img);
  double worst = 0;
  for (guint i = 0; i < np; i++)
    worst = MAX (worst, fabs (prob[i] - ref[i]));
  if (worst > 1e-4)
    fail_msg ("tiny LungNet: max |C - PyTorch| = %g", worst);
}

static void
test_shipped_model (void **state)
{
  g_autoptr (CxrLungModel) m = shipped_lung_model ();
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o = fixture (parser, "lungs_real.json");
  JsonArray *films = json_object_get_array_member (o, "films");
  assert_int_equal (json_array_get_length (films), 2);
  for (guint f = 0; f < 2; f++)
    {
      JsonObject *fo = json_array_get_object_element (films, f);
      g_autofree char *p = g_build_filename (g_getenv ("CXR_TEST_DATA"), "lungs",
                                             json_object_get_string_member (fo, "file"), NULL);
      g_autoptr (CxrImage) im = cxr_image_load (p, NULL, NULL, NULL);
      assert_non_null (im);
      assert_int_equal (im->width, cxr_lung_model_input_size (m));
      /* the film is the network's size: the preprocessing only equalises
       * (as the model's input_equalize says) and normalises */
      g_autofree float *x = cxr_lung_model_preprocess (m, im);
      g_autofree float *prob = cxr_lung_model_forward (m, x);
      JsonArray *idx = json_object_get_array_member (fo, "index");
      guint n, ni;
      g_autofree float *ref = floats (fo, "prob", &n);
      g_autofree float *in = floats (fo, "input", &ni);
      assert_int_equal (n, ni);
      double worst = 0, worst_in = 0;
      for (guint i = 0; i < n; i++)
        {
          int k = json_array_get_int_element (idx, i);
          worst = MAX (worst, fabs (prob[k] - ref[i]));
          worst_in = MAX (worst_in, fabs (x[k] - in[i]));
        }
      if (worst_in > 1e-5)
        fail_msg ("%s: input: max |C - Python| = %g", p, worst_in);
      if (worst > 1e-4)
        fail_msg ("%s: max |C - PyTorch| = %g", p, worst);
    }
}

static void
test_segment_real_films (void **state)
{
  g_autoptr (CxrLungModel) m = shipped_lung_model ();
  const char *films[] = { "00000001_000.png", "00001543_004.png", "00002633_016.png" };
  for (guint k = 0; k < G_N_ELEMENTS (films); k++)
    {
      g_autofree char *p
          = g_build_filename (g_getenv ("CXR_SOURCE_ROOT"), "sample", "images", films[k], NULL);
      g_autoptr (CxrImage) im = cxr_image_load (p, NULL, NULL, NULL);
      g_autoptr (GError) err = NULL;
      g_autoptr (CxrLungFields) l = cxr_lungs_segment (m, im, &err);
      assert_non_null (l);
      assert_int_equal (l->width, im->width);
      assert_int_equal (l->height, im->height);
      if (l->status != CXR_LUNGS_OK)
        fail_msg ("%s: %s (quality %.2f)", films[k], l->reason, l->quality);
      assert_true (l->quality >= 0.6 && l->quality <= 1);
      assert_true (l->lung_fraction > 0.1 && l->lung_fraction < 0.5);
      /* the patient's right lung on the image's left */
      double rx = 0, lx = 0;
      guint64 counted[3] = { 0 };
      for (int y = 0; y < l->height; y++)
        for (int x = 0; x < l->width; x++)
          {
            guint8 v = l->mask[(gsize) y * l->width + x];
            counted[v]++;
            if (v == 1)
              rx += x;
            else if (v == 2)
              lx += x;
          }
      assert_true (counted[1] == (guint64) l->right_area_px);
      assert_true (counted[2] == (guint64) l->left_area_px);
      assert_true (rx / counted[1] < im->width / 2.0 && lx / counted[2] > im->width / 2.0);
      assert_true (l->bbox_x0 < l->bbox_x1 && l->bbox_y0 < l->bbox_y1);
      /* adults' hearts: a third to two thirds of the thorax */
      if (!(l->cardiothoracic_ratio > 0.3 && l->cardiothoracic_ratio < 0.67))
        fail_msg ("%s: cardiothoracic ratio %g", films[k], l->cardiothoracic_ratio);
    }
  /* a blank film has no lungs: never ok */
  g_autoptr (CxrImage) blank = cxr_image_new (300, 200);
  for (int i = 0; i < 300 * 200; i++)
    blank->data[i] = 0.5f;
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrLungFields) l = cxr_lungs_segment (m, blank, &err);
  assert_non_null (l);
  assert_int_equal (l->status, CXR_LUNGS_IMPLAUSIBLE);
  assert_non_null (l->reason);
  assert_int_equal (l->width, 300);
  assert_true (isnan (l->cardiothoracic_ratio));
}

/* Fields drawn by hand: lung 1 at x 10-39 and lung 2 at x 60-89 over rows
 * 10-89 (thorax 80 px wide), the heart pushing lung 1's medial edge to x
 * 35 and lung 2's to x 65 on rows 56-67 (half the rows read, 50-80 % of
 * the height: 50-73, so each border's quartile is the bulge), and lung 2
 * tapering to a sliver (x 85-89) on rows 70-73, whose medial edge is not
 * the heart's. */
static void
test_cardiothoracic_ratio (void **state)
{
  (void) state;
  CxrLungFields l = { .width = 100, .height = 100, .status = CXR_LUNGS_OK };
  g_autofree guint8 *mask = g_new0 (guint8, 100 * 100);
  l.mask = mask;
  for (int y = 10; y <= 89; y++)
    for (int x = 10; x <= 89; x++)
      {
        gboolean heart = y >= 56 && y <= 67, sliver = y >= 70 && y <= 73;
        if (x <= (heart ? 35 : 39))
          mask[y * 100 + x] = 1;
        else if (x >= (sliver ? 85 : heart ? 65 : 60))
          mask[y * 100 + x] = 2;
      }
  l.bbox_x0 = 10, l.bbox_y0 = 10, l.bbox_x1 = 89, l.bbox_y1 = 89;
  /* from x 35 to x 65: 29 px of heart between the lungs, over 80 */
  assert_float_equal (cxr_lungs_cardiothoracic_ratio (&l), 29.0 / 80, 1e-12);
  /* turned half a turn (lungs swapped, rows reversed): the bulge, now on
   * rows 32-43, is outside the window, so the lungs' straight edges (x 39
   * and 60) bound the heart */
  g_autoptr (CxrLungFields) r = cxr_lung_fields_rotate_180 (&l);
  assert_float_equal (r->cardiothoracic_ratio, 20.0 / 80, 1e-12);
  /* a wider heart on a row above the window changes nothing */
  for (int x = 36; x <= 39; x++)
    mask[30 * 100 + x] = 0;
  assert_float_equal (cxr_lungs_cardiothoracic_ratio (&l), 29.0 / 80, 1e-12);
  /* a bulge on two rows alone is not the heart's border (a quartile of
   * the rows, not the extreme) */
  for (int y = 56; y <= 67; y++)
    for (int x = 36; x <= 64; x++)
      if (y > 57)
        mask[y * 100 + x] = x <= 39 ? 1 : x >= 60 ? 2 : 0;
  assert_float_equal (cxr_lungs_cardiothoracic_ratio (&l), 20.0 / 80, 1e-12);
  /* implausible fields are not read */
  l.status = CXR_LUNGS_IMPLAUSIBLE;
  assert_true (isnan (cxr_lungs_cardiothoracic_ratio (&l)));
}

/* Box blur of radius r, separable, edges clamped (three passes make a
 * smooth feather for a painted region). */
static void
box_blur (float *m, int w, int h, int r)
{
  g_autofree float *t = g_new (float, MAX (w, h));
  for (int y = 0; y < h; y++)
    {
      float *row = m + (gsize) y * w;
      for (int x = 0; x < w; x++)
        {
          double s = 0;
          for (int d = -r; d <= r; d++)
            s += row[CLAMP (x + d, 0, w - 1)];
          t[x] = (float) (s / (2 * r + 1));
        }
      memcpy (row, t, sizeof (float) * w);
    }
  for (int x = 0; x < w; x++)
    {
      for (int y = 0; y < h; y++)
        {
          double s = 0;
          for (int d = -r; d <= r; d++)
            s += m[(gsize) CLAMP (y + d, 0, h - 1) * w + x];
          t[y] = (float) (s / (2 * r + 1));
        }
      for (int y = 0; y < h; y++)
        m[(gsize) y * w + x] = t[y];
    }
}

static int
cmp_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

/* A real film with one lung made opaque (its field painted, feathered,
 * with the brightness of the film outside the lungs, as an opacified
 * hemithorax looks): implausible as a pair of lungs, airless_side names
 * the painted side, what is found there is under 3.5 % of the film (less
 * than any lung field of the training masks), and the other lung's area
 * stays within 7 % of the untouched film's; either side. (The network's
 * input is histogram-equalised, so a hemithorax turned white shifts the
 * grey of the other lung a little: +3.9 % and +5.7 % here; within 5 %
 * before equalisation. The lung-area signal's visit limit is 36 %.) */
static void
test_one_side_airless (void **state)
{
  g_autoptr (CxrLungModel) m = shipped_lung_model ();
  g_autofree char *p = g_build_filename (g_getenv ("CXR_SOURCE_ROOT"), "sample", "images",
                                         "00001543_003.png", NULL);
  g_autoptr (CxrImage) im = cxr_image_load (p, NULL, NULL, NULL);
  assert_non_null (im);
  g_autoptr (CxrLungFields) l = cxr_lungs_segment (m, im, NULL);
  assert_true (l && l->status == CXR_LUNGS_OK && l->airless_side == NULL);
  int w = im->width, h = im->height;
  gsize n = (gsize) w * h;
  /* the brightness outside the lungs: its 80th percentile */
  g_autofree float *out = g_new (float, n);
  gsize no = 0;
  for (gsize i = 0; i < n; i++)
    if (l->mask[i] == 0)
      out[no++] = im->data[i];
  qsort (out, no, sizeof (float), cmp_float);
  float bright = out[(gsize) (0.8 * (no - 1))];
  for (int side = 1; side <= 2; side++)
    {
      g_autofree float *a = g_new (float, n);
      for (gsize i = 0; i < n; i++)
        a[i] = l->mask[i] == side;
      for (int k = 0; k < 3; k++)
        box_blur (a, w, h, 15);
      g_autoptr (CxrImage) op = cxr_image_new (w, h);
      for (gsize i = 0; i < n; i++)
        op->data[i] = im->data[i] * (1 - a[i]) + bright * a[i];
      g_autoptr (CxrLungFields) o = cxr_lungs_segment (m, op, NULL);
      assert_non_null (o);
      const char *want = side == 1 ? "right" : "left";
      double kept = side == 1 ? o->left_area_px : o->right_area_px;
      double before = side == 1 ? l->left_area_px : l->right_area_px;
      print_message ("%s lung opaque: %s (%s), areas %.0f / %.0f (untouched %.0f / %.0f)\n", want,
                     cxr_lungs_status_name (o->status), o->reason ? o->reason : "-",
                     o->right_area_px, o->left_area_px, l->right_area_px, l->left_area_px);
      assert_int_equal (o->status, CXR_LUNGS_IMPLAUSIBLE);
      assert_non_null (o->airless_side);
      assert_string_equal (o->airless_side, want);
      assert_true (fabs (kept / before - 1) < 0.07);
      assert_true ((side == 1 ? o->right_area_px : o->left_area_px) < 0.035 * n);
    }
}

static void
test_bad_files (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *classifier
      = g_build_filename (g_getenv ("CXR_SOURCE_ROOT"), "models", "cxr-default.safetensors", NULL);
  assert_null (cxr_lung_model_load (classifier, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_MODEL));
  assert_non_null (strstr (err->message, "is not a lung segmenter"));
  g_clear_error (&err);
  /* the tiny model with a tensor gone */
  g_autofree char *p
      = g_build_filename (g_getenv ("CXR_TEST_DATA"), "model", "lungnet_tiny.safetensors", NULL);
  g_autofree char *raw = NULL;
  gsize len;
  assert_true (g_file_get_contents (p, &raw, &len, NULL));
  /* the JSON header follows the 8-byte little-endian length */
  char *at = strstr (raw + 8, "\"head.bias\"");
  assert_non_null (at);
  memcpy (at + 1, "hxxd", 4);
  g_autofree char *broken = g_build_filename (tmpdir, "broken.safetensors", NULL);
  assert_true (g_file_set_contents (broken, raw, (gssize) len, NULL));
  assert_null (cxr_lung_model_load (broken, &err));
  assert_non_null (strstr (err->message, "missing tensor 'head.bias'"));
  g_clear_error (&err);
  /* an equalisation the runtime does not know: refused, not ignored */
  g_autofree char *raw2 = NULL;
  assert_true (g_file_get_contents (p, &raw2, &len, NULL));
  guint64 hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = hlen << 8 | (guint8) raw2[i];
  g_autoptr (GString) h = g_string_new_len (raw2 + 8, (gssize) hlen);
  assert_true (g_string_replace (h, "\"classes\":\"lung\"", "\"input_equalize\":\"clahe\"", 1)
               == 1);
  while (h->len % 8)
    g_string_append_c (h, ' ');
  g_autofree char *odd = write_safetensors_raw ("odd-equalize.safetensors", h->str,
                                                (const guint8 *) raw2 + 8 + hlen, len - 8 - hlen);
  assert_null (cxr_lung_model_load (odd, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_MODEL));
  assert_non_null (strstr (err->message, "input_equalize 'clahe'"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_layers),
    cmocka_unit_test (test_tiny_net),
    cmocka_unit_test (test_shipped_model),
    cmocka_unit_test (test_segment_real_films),
    cmocka_unit_test (test_one_side_airless),
    cmocka_unit_test (test_bad_files),
    cmocka_unit_test (test_cardiothoracic_ratio),
  };
  return cmocka_run_group_tests (tests, tmpdir_setup, tmpdir_teardown);
}
