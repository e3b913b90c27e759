/* SPDX-License-Identifier: MIT
 *
 * Brixia zones and scores (severity.c): zones drawn on synthetic lung
 * fields (thirds of both lungs' rows, an opaque base the lung fields leave
 * out still inside its zone, an airless side mirrored, implausible fields
 * refused with fixed zones), the features of a zone (density, aerated
 * share, the classifier's maps pooled over it by coverage), and the
 * shipped head: it reads the shipped classifier's features, refuses
 * a prediction of another shape, and scores within 0..3 with the global their sum; broken head
 * files are refused with the file named.
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

/* cmocka 1.1 has no assert_near */
#define assert_near(a, b, eps)                                                                     \
  do                                                                                               \
    {                                                                                              \
      double a_ = (a), b_ = (b);                                                                   \
      if (!(fabs (a_ - b_) <= (eps)))                                                              \
        fail_msg ("%s = %g, wanted %g", #a, a_, b_);                                               \
    }                                                                                              \
  while (0)

#define W 400
#define H 480

/* Lungs: the patient's right (label 1) in columns 60..179, rows 100..399;
 * the left (2) in columns 220..339, rows 100..459. */
static CxrLungFields *
fields (gboolean left_too)
{
  CxrLungFields *l = g_new0 (CxrLungFields, 1);
  l->width = W;
  l->height = H;
  l->mask = g_new0 (guint8, W * H);
  for (int y = 100; y < 460; y++)
    for (int x = 0; x < W; x++)
      {
        if (y < 400 && x >= 60 && x < 180)
          l->mask[y * W + x] = 1;
        if (left_too && x >= 220 && x < 340)
          l->mask[y * W + x] = 2;
      }
  l->status = left_too ? CXR_LUNGS_OK : CXR_LUNGS_IMPLAUSIBLE;
  l->airless_side = left_too ? NULL : "left";
  return l;
}

/* A prediction on an 8 x 8 map: one class whose activation is the cell's
 * row, one feature that is its column. */
static CxrPrediction *
prediction (void)
{
  CxrPrediction *p = g_new0 (CxrPrediction, 1);
  p->dim = 1;
  p->n_classes = 1;
  p->map_w = p->map_h = 8;
  p->cam = g_new (float, 64);
  p->features = g_new (float, 64);
  for (int c = 0; c < 64; c++)
    {
      p->cam[c] = (float) (c / 8);
      p->features[c] = (float) (c % 8);
    }
  return p;
}

static CxrImage *
film (void)
{
  CxrImage *im = cxr_image_new (W, H);
  for (int i = 0; i < W * H; i++)
    im->data[i] = 0.2f;
  /* the right lower zone (rows 340..459) opaque */
  for (int y = 340; y < H; y++)
    for (int x = 0; x < 200; x++)
      im->data[y * W + x] = 0.7f;
  im->data[0] = 1.0f; /* the film's range */
  im->data[1] = 0.0f;
  return im;
}

#define F(s, z, i) ((s)->features[(gsize) (z) * (s)->n_features + (i)])

static void
test_zones (void **state)
{
  g_autoptr (CxrImage) im = film ();
  g_autoptr (CxrLungFields) l = fields (TRUE);
  g_autoptr (CxrPrediction) p = prediction ();
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrSeverity) s = cxr_severity_measure (NULL, im, l, p, &err);
  assert_non_null (s);
  assert_int_equal (s->status, CXR_SEVERITY_OK);
  assert_string_equal (s->method, "thirds");
  /* both lungs' rows, 100..459, in thirds of 120 */
  int want[6][2]
      = { { 100, 219 }, { 220, 339 }, { 340, 459 }, { 100, 219 }, { 220, 339 }, { 340, 459 } };
  for (int z = 0; z < 6; z++)
    {
      assert_int_equal (s->y0[z], want[z][0]);
      assert_int_equal (s->y1[z], want[z][1]);
    }
  /* 9 own features, 1 activation, 1 feature, then 10 of context */
  assert_int_equal (s->n_features, 21);
  /* zone C: rows 400..459 had no right lung field; they take the left
   * lung mirrored about the midline (x = 199.5): columns 60..179 */
  assert_near (s->area_px[2], 120.0 * 120, 1e-9);
  assert_near (F (s, 2, 7), 60.0 / 120, 1e-6); /* aerated share */
  assert_near (s->area_px[0], 120.0 * 120, 1e-9);
  assert_near (F (s, 0, 7), 1.0, 1e-6);
  /* density: the opaque zone against the clear one */
  assert_true (F (s, 2, 0) > F (s, 0, 0) + 0.3);
  assert_true (F (s, 5, 0) < F (s, 2, 0));
  /* the activation pooled by coverage: zone A's rows 100..219 cover map
   * rows 1 (20 px), 2 (60) and 3 (40) */
  assert_near (F (s, 0, 9), (20 * 1 + 60 * 2 + 40 * 3) / 120.0, 1e-5);
  /* the feature: zone D's columns 220..339 cover map columns (50 px
   * each) 4 (30 px), 5 (50) and 6 (40) */
  assert_near (F (s, 3, 10), (30 * 4 + 50 * 5 + 40 * 6) / 120.0, 1e-5);
  /* the film's context: the mean over zones, the same in every zone */
  double mean = 0;
  for (int z = 0; z < 6; z++)
    mean += F (s, z, 0) / 6;
  for (int z = 0; z < 6; z++)
    assert_near (F (s, z, 11), mean, 1e-5);
  /* zone shares sum to one */
  double share = 0;
  for (int z = 0; z < 6; z++)
    share += F (s, z, 8);
  assert_near (share, 1.0, 1e-5);
  assert_true (isnan (s->global));
}

static void
test_airless_and_implausible (void **state)
{
  g_autoptr (CxrImage) im = film ();
  g_autoptr (CxrPrediction) p = prediction ();
  g_autoptr (GError) err = NULL;
  /* no left lung field: the right lung mirrored about the film's middle */
  g_autoptr (CxrLungFields) l = fields (FALSE);
  {
    g_autoptr (CxrSeverity) s = cxr_severity_measure (NULL, im, l, p, &err);
    assert_non_null (s);
    assert_int_equal (s->status, CXR_SEVERITY_OK);
    assert_string_equal (s->method, "thirds-mirrored");
    assert_int_equal (s->y0[3], 100);
    assert_int_equal (s->y1[5], 399);
    assert_near (F (s, 4, 7), 0.0, 1e-9); /* nothing aerated there */
    assert_near (F (s, 1, 7), 1.0, 1e-6);
  }
  /* implausible without an airless side: fixed fractions of the film */
  l->airless_side = NULL;
  {
    g_autoptr (CxrSeverity) s = cxr_severity_measure (NULL, im, l, p, &err);
    assert_non_null (s);
    assert_int_equal (s->status, CXR_SEVERITY_IMPLAUSIBLE);
    assert_string_equal (s->method, "fixed");
    assert_non_null (strstr (s->reason, "implausible"));
  }
  /* no lung fields at all */
  {
    g_autoptr (CxrSeverity) s = cxr_severity_measure (NULL, im, NULL, p, &err);
    assert_int_equal (s->status, CXR_SEVERITY_IMPLAUSIBLE);
    assert_non_null (strstr (s->reason, "no lung fields"));
  }
  /* fields of another size */
  g_autoptr (CxrImage) small = cxr_image_new (W / 2, H / 2);
  assert_null (cxr_severity_measure (NULL, small, l, p, &err));
  assert_non_null (strstr (err->message, "lung fields of 400x480"));
}

static char *
source_path (const char *rel)
{
  return g_build_filename (g_getenv ("CXR_SOURCE_ROOT"), rel, NULL);
}

static void
test_shipped_head (void **state)
{
  g_autofree char *hp = source_path ("models/cxr-severity.safetensors");
  g_autofree char *cp = source_path ("models/cxr-default.safetensors");
  g_autofree char *lp = source_path ("models/cxr-lungs.safetensors");
  g_autofree char *fp = source_path ("sample/images/00000001_002.png");
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrSeverityModel) head = cxr_severity_model_load (hp, &err);
  assert_non_null (head);
  g_autoptr (CxrModel) cls = cxr_model_load (cp, &err);
  g_autoptr (CxrLungModel) lm = cxr_lung_model_load (lp, &err);
  assert_non_null (cls);
  assert_non_null (lm);
  assert_true (cxr_severity_model_check (head, cls, &err));
  assert_string_equal (cxr_severity_model_classifier (head), cxr_model_sha256 (cls));
  g_autoptr (CxrImage) im = cxr_image_load (fp, NULL, NULL, &err);
  g_autoptr (CxrLungFields) l = cxr_lungs_segment (lm, im, &err);
  g_autoptr (CxrPrediction) p = cxr_model_predict (cls, im);
  g_autoptr (CxrSeverity) s = cxr_severity_measure (head, im, l, p, &err);
  assert_non_null (s);
  double sum = 0;
  for (int z = 0; z < 6; z++)
    {
      assert_true (s->score[z] >= 0 && s->score[z] <= 3);
      sum += s->score[z];
    }
  assert_near (s->global, sum, 1e-9);
  /* a prediction of another shape is refused, not read past its end */
  g_autoptr (CxrPrediction) q = prediction ();
  g_clear_error (&err);
  g_autoptr (CxrSeverity) t = cxr_severity_measure (head, im, l, q, &err);
  assert_null (t);
  assert_non_null (strstr (err->message, "features per zone"));
}

static void
test_bad_heads (void **state)
{
  g_autofree char *hp = source_path ("models/cxr-severity.safetensors");
  g_autofree char *dir = g_dir_make_tmp ("cxr-sev-XXXXXX", NULL);
  g_autofree char *bad = g_build_filename (dir, "bad.safetensors", NULL);
  g_autofree char *data = NULL;
  gsize len;
  assert_true (g_file_get_contents (hp, &data, &len, NULL));
  g_autoptr (GError) err = NULL;
  /* truncated */
  assert_true (g_file_set_contents (bad, data, len - 8, NULL));
  assert_null (cxr_severity_model_load (bad, &err));
  assert_non_null (strstr (err->message, "bad.safetensors"));
  g_clear_error (&err);
  /* another architecture: the lung segmenter */
  g_autofree char *lp = source_path ("models/cxr-lungs.safetensors");
  assert_null (cxr_severity_model_load (lp, &err));
  assert_non_null (strstr (err->message, "not a zone-score head"));
  g_unlink (bad);
  g_rmdir (dir);
}

/* A head for the prediction() above (21 features per zone): mean 0,
 * scale 1, weight 1 on the zone's mean density, bias 0.5; @breakage
 * names what is wrong with it (NULL: nothing). */
static char *
write_head (const char *dir, const char *breakage)
{
  enum { NF = 21 };
  float mean[NF] = { 0 }, scale[NF], weight[NF] = { 0 }, bias[6], extra[1] = { 0 };
  for (int i = 0; i < NF; i++)
    scale[i] = 1;
  weight[0] = 1;
  for (int z = 0; z < 6; z++)
    bias[z] = 0.5f;
  gint64 nf = NF, nw = NF, nb = 6, n1 = 1;
  const char *names[] = { "feature_mean", "feature_scale", "weight", "zone_bias", "extra" };
  const float *data[] = { mean, scale, weight, bias, extra };
  const gint64 *shapes[] = { &nf, &nf, &nw, &nb, &n1 };
  const int nd[] = { 1, 1, 1, 1, 1 };
  guint n = 4;
  g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (meta, "architecture", "cxr-brixia-ridge");
  g_hash_table_insert (meta, "feature_set", "brixia-v1");
  g_hash_table_insert (meta, "n_features", "21");
  g_hash_table_insert (meta, "classifier_sha256",
                       "3884912929ed2ee267624a9383dd18bed1447743456844c25f3cc2322a70410b");
  const char *b = breakage ? breakage : "";
  if (g_str_equal (b, "no zone_bias"))
    n = 3;
  else if (g_str_equal (b, "short weight"))
    nw = NF - 1;
  else if (g_str_equal (b, "infinite weight"))
    weight[3] = INFINITY;
  else if (g_str_equal (b, "zero scale"))
    scale[5] = 0;
  else if (g_str_equal (b, "extra tensor"))
    n = 5;
  else if (g_str_equal (b, "n_features x"))
    g_hash_table_insert (meta, "n_features", "x");
  else if (g_str_equal (b, "n_features 5"))
    g_hash_table_insert (meta, "n_features", "5");
  else if (g_str_equal (b, "no classifier"))
    g_hash_table_remove (meta, "classifier_sha256");
  else if (g_str_equal (b, "feature set v0"))
    g_hash_table_insert (meta, "feature_set", "brixia-v0");
  char *path = g_build_filename (dir, "head.safetensors", NULL);
  g_autoptr (GError) err = NULL;
  if (!cxr__safetensors_write (path, meta, n, names, nd, shapes, data, &err))
    fail_msg ("%s", err->message);
  return path;
}

/* A head made by hand scores as its formula says; each broken head is
 * refused with its file named and what is wrong. */
static void
test_head_files (void **state)
{
  g_autofree char *dir = g_dir_make_tmp ("cxr-head-XXXXXX", NULL);
  g_autoptr (GError) err = NULL;
  {
    g_autofree char *p = write_head (dir, NULL);
    g_autoptr (CxrSeverityModel) head = cxr_severity_model_load (p, &err);
    assert_non_null (head);
    g_autoptr (CxrImage) im = film ();
    g_autoptr (CxrLungFields) l = fields (TRUE);
    g_autoptr (CxrPrediction) pr = prediction ();
    g_autoptr (CxrSeverity) s = cxr_severity_measure (head, im, l, pr, &err);
    assert_non_null (s);
    double sum = 0;
    for (int z = 0; z < 6; z++)
      {
        assert_near (s->score[z], CLAMP (0.5 + F (s, z, 0), 0.0, 3.0), 1e-6);
        sum += s->score[z];
      }
    assert_near (s->global, sum, 1e-9);
    g_unlink (p);
  }
  const struct {
    const char *breakage, *want;
  } bad[] = {
    { "no zone_bias", "tensor 'zone_bias' is missing" },
    { "short weight", "tensor 'weight' has the wrong shape" },
    { "infinite weight", "tensor 'weight' holds a value that is not finite" },
    { "zero scale", "feature_scale[5] is not positive" },
    { "extra tensor", "5 tensors where a cxr-brixia-ridge head has 4" },
    { "n_features x", "n_features 'x' is not" },
    { "n_features 5", "n_features '5' is not" },
    { "no classifier", "needs feature_set brixia-v1, classifier_sha256" },
    { "feature set v0", "needs feature_set brixia-v1, classifier_sha256" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *p = write_head (dir, bad[i].breakage);
      g_clear_error (&err);
      g_autoptr (CxrSeverityModel) head = cxr_severity_model_load (p, &err);
      if (head != NULL)
        fail_msg ("%s: read", bad[i].breakage);
      if (!strstr (err->message, "head.safetensors") || !strstr (err->message, bad[i].want))
        fail_msg ("%s: '%s', wanted '%s'", bad[i].breakage, err->message, bad[i].want);
      g_unlink (p);
    }
  g_rmdir (dir);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_zones),        cmocka_unit_test (test_airless_and_implausible),
    cmocka_unit_test (test_shipped_head), cmocka_unit_test (test_bad_heads),
    cmocka_unit_test (test_head_files),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
