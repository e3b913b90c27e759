/* SPDX-License-Identifier: MIT
 *
 * Difference maps: a film against itself changes nothing; an exposure
 * change alone changes nothing (quantile matching); an inserted blob is
 * found where it is, with about its area; failed registrations give no map;
 * the files written are a PNG and a float16 .npy of the grid's size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "change-private.h"
#include "cxr/cxr.h"
#include "testutil.h"

static CxrImage *film;
static CxrRegistration identity;

static int
setup (void **state)
{
  g_autofree char *p = g_build_filename (g_getenv ("CXR_SOURCE_ROOT"), "sample", "images",
                                         "00000001_000.png", NULL);
  film = cxr_image_load (p, NULL, NULL, NULL);
  identity.scale = 1;
  identity.status = CXR_REGISTER_OK;
  return film ? 0 : -1;
}

static int
teardown (void **state)
{
  cxr_image_free (film);
  return 0;
}

static CxrImage *
copy_film (void)
{
  CxrImage *c = cxr_image_new (film->width, film->height);
  memcpy (c->data, film->data, sizeof (float) * film->width * film->height);
  return c;
}

/* Adds a sphere's projected thickness to @m: radius @r px at (@cx, @cy),
 * @c at its centre (a nodule or a round opacity). */
static void
add_sphere (CxrImage *m, double cx, double cy, double r, double c)
{
  for (int y = 0; y < m->height; y++)
    for (int x = 0; x < m->width; x++)
      {
        double q = hypot (x - cx, y - cy) / r;
        if (q < 1)
          m->data[(gsize) y * m->width + x] += (float) (c * sqrt (1 - q * q));
      }
}

static void
test_no_change (void **state)
{
  g_autoptr (CxrImage) same = copy_film ();
  CxrDiff d;
  g_autoptr (GError) err = NULL;
  assert_true (cxr_diff_pair (film, same, &identity, 0.37, NULL, NULL, &d, &err));
  assert_true (d.change_score == 0);
  assert_true (d.trend_score == 0);
  assert_true (d.changed_area_px == 0);
  assert_true (d.change_energy < 1e-3);
  assert_true (d.mask_area_px > 0.3 * 1024 * 1024);
  cxr_diff_clear (&d);
  /* exposure: gamma 0.8 and gain 0.9 everywhere */
  for (int i = 0; i < same->width * same->height; i++)
    same->data[i] = 0.9f * powf (same->data[i], 0.8f);
  assert_true (cxr_diff_pair (film, same, &identity, 0.37, NULL, NULL, &d, &err));
  if (d.changed_area_px > 0)
    fail_msg ("exposure change shows as change: %.0f px^2, score %.2f", d.changed_area_px,
              d.change_score);
  cxr_diff_clear (&d);
}

/* Two re-posed, re-exposed copies of one never-seen 256-px NIH film
 * (train256 00011529_000, copies 0 and 2 of bench/progression_synth.py
 * --train256 seed 6; tests/data/reexposed), registered and compared as
 * analyze does (global transform, whole lung): nothing changed, so
 * nothing is over the thresholds. With 65 quantiles from the minimum to
 * the maximum, the exposure match's top segment ran from the 98.4th
 * percentile to the brightest pixel, and the spine under the right dome
 * read 0.043 of change (trend score 6.0, change score 0.75): the series
 * was flagged acute_change. */
static void
test_reexposed_copy (void **state)
{
  g_autofree char *dir
      = g_build_filename (g_getenv ("CXR_SOURCE_ROOT"), "tests", "data", "reexposed", NULL);
  g_autofree char *pf = g_build_filename (dir, "00011529_000_copy0.png", NULL);
  g_autofree char *pm = g_build_filename (dir, "00011529_000_copy2.png", NULL);
  g_autoptr (CxrImage) f = cxr_image_load (pf, NULL, NULL, NULL);
  g_autoptr (CxrImage) m = cxr_image_load (pm, NULL, NULL, NULL);
  assert_non_null (f);
  assert_non_null (m);
  g_autoptr (CxrLungModel) lm = shipped_lung_model ();
  g_autoptr (CxrLungFields) fl = cxr_lungs_segment (lm, f, NULL);
  g_autoptr (CxrLungFields) ml = cxr_lungs_segment (lm, m, NULL);
  assert_true (fl && ml && fl->status == CXR_LUNGS_OK && ml->status == CXR_LUNGS_OK);
  CxrRegisterOptions ro;
  cxr_register_options_init (&ro);
  ro.no_deform = TRUE;
  CxrRegisterInputs rin = { 0, 0, fl, ml };
  CxrRegistration r;
  assert_true (cxr_register_pair (f, m, &rin, &ro, &r, NULL));
  assert_int_equal (r.status, CXR_REGISTER_OK);
  CxrDiffInputs din = { 0 };
  din.fixed_lungs = fl;
  din.moving_lungs = ml;
  CxrDiff d;
  g_autoptr (GError) err = NULL;
  assert_true (cxr_diff_pair (f, m, &r, 1.525, &din, NULL, &d, &err));
  print_message ("%s: change score %.3f, trend score %.3f, peak %.4f at (%.0f, %.0f)\n",
                 d.mask_kind, d.change_score, d.trend_score, d.peak_value, d.peak_x_px,
                 d.peak_y_px);
  assert_string_equal (d.mask_kind, "whole_lung");
  assert_true (d.change_score == 0);
  assert_true (d.trend_score == 0);
  cxr_diff_clear (&d);
}

static void
test_blob_found (void **state)
{
  g_autoptr (CxrImage) m = copy_film ();
  double cx = 300, cy = 420, r = 20; /* a 15 mm opacity at 0.37 mm/px, left lung of the image */
  add_sphere (m, cx, cy, r, 0.12);
  CxrDiff d;
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("cxr-diff-XXXXXX", NULL);
  g_autofree char *png = g_build_filename (dir, "d.map.png", NULL);
  CxrDiffOptions o;
  cxr_diff_options_init (&o);
  assert_true (cxr_diff_pair (film, m, &identity, 0.37, NULL, &o, &d, &err));
  assert_int_equal (d.map_width, 512);
  double map_scale = cxr_diff_write_map (&d, png, &err);
  if (hypot (d.peak_x_px - cx, d.peak_y_px - cy) > 6 || d.peak_value <= 0)
    fail_msg ("peak at (%.1f, %.1f) value %.3f; blob at (%.0f, %.0f)", d.peak_x_px, d.peak_y_px,
              d.peak_value, cx, cy);
  /* smoothed, thresholded: some of the disc's area, and not much more */
  double disc = G_PI * r * r;
  if (d.changed_area_px < 0.2 * disc || d.changed_area_px > 1.5 * disc)
    fail_msg ("changed area %.0f px^2 for a disc of %.0f", d.changed_area_px, disc);
  assert_true (fabs (d.changed_area_mm2 - d.changed_area_px * 0.37 * 0.37) < 1e-6);
  assert_true (d.change_score > 0);
  /* without lung fields the map has no zones */
  for (int z = 0; z < CXR_DIFF_N_REGIONS; z++)
    assert_true (d.region_area_px[z] == 0 && d.region_score[z] == 0);
  /* fixed thresholds (not the pair's own noise, which real change raises) */
  assert_true (d.threshold == 0.03 && d.trend_threshold == 0.015);
  /* the trend score: the same sum at the lower trend threshold */
  assert_true (d.trend_threshold < d.threshold);
  assert_true (d.trend_score
               > d.change_score + (d.threshold - d.trend_threshold) * d.changed_area_px - 1e-6);
  /* the stored map: 8-bit grey, 512 px, its scale kept; the measures
   * made again from it agree with those of the float map within 1 % */
  {
    CxrImageInfo info;
    g_autoptr (CxrImage) again = cxr_image_load (png, NULL, &info, &err);
    assert_non_null (again);
    assert_string_equal (info.color_type, "gray");
    assert_int_equal (info.bit_depth, 8);
  }
  assert_true (map_scale > 0 && fabs (map_scale * 127 - fabs (d.peak_value)) < 1e-6);
  int w, h;
  g_autofree float *map = cxr_diff_read_map (png, map_scale, &w, &h, &err);
  assert_non_null (map);
  assert_int_equal (w, 512);
  double k = 512.0 / MAX (film->width, film->height);
  double score = 0, e2 = 0, n = 0, peak = 0;
  for (int i = 0; i < w * h; i++)
    if (!isnan (map[i]))
      {
        double a = fabs (map[i]);
        score += a > d.threshold ? a - d.threshold : 0;
        e2 += a * a;
        n++;
        peak = MAX (peak, a);
      }
  score /= k * k;
  if (fabs (score - d.change_score) > 0.01 * d.change_score
      || fabs (1e4 * e2 / n - d.change_energy) > 0.01 * d.change_energy
      || fabs (n / (k * k) - d.mask_area_px) > 1e-6 * d.mask_area_px)
    fail_msg ("from the stored map: score %.2f energy %.4f area %.0f; measured: %.2f %.4f %.0f",
              score, 1e4 * e2 / n, n / (k * k), d.change_score, d.change_energy, d.mask_area_px);
  assert_true (fabs (peak - fabs (d.peak_value)) < 1e-6);
  /* the overlay drawn from it: red at the blob (brighter now), grey far away */
  g_autofree guint8 *rgb = cxr_diff_render_overlay (film, map, w, h, d.threshold, FALSE);
  int bx = (int) lround ((cx - (film->width - 1) / 2.0) * k + (w - 1) / 2.0);
  int by = (int) lround ((cy - (film->height - 1) / 2.0) * k + (h - 1) / 2.0);
  const guint8 *p = rgb + 3 * ((gsize) by * w + bx);
  if (!(p[0] > 200 && p[2] < 100))
    fail_msg ("overlay at the blob is (%d, %d, %d), not red", p[0], p[1], p[2]);
  const guint8 *q = rgb + 3 * ((gsize) 20 * w + 20);
  assert_true (q[0] == q[1] && q[1] == q[2]);
  /* change within the pair's threshold (its noise) is not coloured */
  int below = 0;
  for (int i = 0; i < w * h && below < 50; i++)
    if (!isnan (map[i]) && fabs (map[i]) > 0.2 * d.threshold && fabs (map[i]) < d.threshold)
      {
        const guint8 *px = rgb + 3 * (gsize) i;
        if (!(px[0] == px[1] && px[1] == px[2]))
          fail_msg ("a change of %g under the threshold %g is coloured (%d, %d, %d)", map[i],
                    d.threshold, px[0], px[1], px[2]);
        below++;
      }
  assert_true (below > 0);
  /* a file that is not a map */
  assert_null (cxr_diff_read_map (png, 0, &w, &h, NULL));
  cxr_diff_clear (&d);
  g_unlink (png);
  g_rmdir (dir);
}

/* analyze hands over the predictions it already made of both films: the
 * results must be those of making them here. */
static void
test_model_predictions_reused (void **state)
{
  g_autofree char *mp
      = g_build_filename (g_getenv ("CXR_SOURCE_ROOT"), "models", "cxr-default.safetensors", NULL);
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrModel) model = cxr_model_load (mp, &err);
  assert_non_null (model);
  g_autoptr (CxrImage) m = copy_film ();
  for (int i = 0; i < m->width * m->height; i++)
    m->data[i] = 0.95f * m->data[i];
  CxrDiffOptions o;
  cxr_diff_options_init (&o);
  o.model = model;
  CxrDiff a, b;
  assert_true (cxr_diff_pair (film, m, &identity, 0.37, NULL, &o, &a, &err));
  g_autoptr (CxrPrediction) pf = cxr_model_predict (model, film);
  g_autoptr (CxrPrediction) pm = cxr_model_predict (model, m);
  CxrDiffInputs in = { pf, pm };
  assert_true (cxr_diff_pair (film, m, &identity, 0.37, &in, &o, &b, &err));
  assert_int_equal (a.n_classes, 14);
  assert_true (a.feature_change == b.feature_change
               && a.embedding_distance == b.embedding_distance);
  assert_true (a.embedding_distance > 0 && a.embedding_distance < 0.1);
  for (int c = 0; c < a.n_classes; c++)
    {
      assert_true (a.probability_delta[c] == b.probability_delta[c]);
      assert_true (a.heatmap_delta_max[c] == b.heatmap_delta_max[c]);
      assert_true (fabs (a.probability_delta[c] - (pm->probability[c] - pf->probability[c]))
                   < 1e-12);
    }
  cxr_diff_clear (&b);
  /* and they are used, not made again: handed FIXED's as MOVING's, the
   * two films look the same to the classifier */
  in.moving_prediction = pf;
  assert_true (cxr_diff_pair (film, m, &identity, 0.37, &in, &o, &b, &err));
  assert_true (b.embedding_distance < 1e-6 && b.probability_delta[0] == 0);
  /* no second inference on the registered film: its maps are the handed
   * prediction's, carried through the (identity) registration */
  assert_true (b.feature_change < 1e-6);
  for (int c = 0; c < b.n_classes; c++)
    assert_true (fabs (b.heatmap_delta_max[c]) < 1e-5);
  cxr_diff_clear (&a);
  cxr_diff_clear (&b);
}

/* The map goes through the deformable field: a film bent by a known field
 * and compared with the registration that carries that field shows no
 * change; the same pair through the global transform alone does. */
static void
test_map_follows_the_field (void **state)
{
  CxrRegistration bend = identity;
  bend.field.nx = bend.field.ny = 6;
  for (int i = 0; i < 36; i++)
    {
      bend.field.ux[i] = (float) (8 * sin (i * 1.1));
      bend.field.uy[i] = (float) (8 * cos (i * 0.7));
    }
  bend.deformable = TRUE;
  /* B(p) = A(p + u(p)): comparing B (fixed) with A (moving) through the bend */
  g_autoptr (CxrImage) bent = cxr_register_warp (film, &bend, film->width, film->height);
  CxrDiff with, without;
  g_autoptr (GError) err = NULL;
  assert_true (cxr_diff_pair (bent, film, &bend, 0.37, NULL, NULL, &with, &err));
  assert_true (cxr_diff_pair (bent, film, &identity, 0.37, NULL, NULL, &without, &err));
  if (!(with.change_energy < 0.05 * without.change_energy && without.changed_area_px > 0))
    fail_msg ("energy %.4f with the field, %.4f without (changed %.0f px^2)", with.change_energy,
              without.change_energy, without.changed_area_px);
  cxr_diff_clear (&with);
  cxr_diff_clear (&without);
}

/* The warp of MOVING onto FIXED's grid runs four columns at a time where
 * the CPU has AVX2: the same bits as the scalar loop, through a rotation,
 * a scale, a shift and a deformable field, with part of the film outside
 * (the map and every measure compared exactly). */
static void
test_warp_wide_is_scalar (void **state)
{
  CxrRegistration r = identity;
  r.angle_deg = 3.7;
  r.scale = 1.043;
  r.dx_px = 23.25;
  r.dy_px = -41.5;
  r.field.nx = r.field.ny = 6;
  for (int i = 0; i < 36; i++)
    {
      r.field.ux[i] = (float) (8 * sin (i * 1.1));
      r.field.uy[i] = (float) (8 * cos (i * 0.7));
    }
  r.deformable = TRUE;
  g_autoptr (CxrImage) m = copy_film ();
  add_sphere (m, 610, 480, 40, 0.08);
  CxrDiff d[2];
  for (int k = 0; k < 2; k++)
    {
      g_autoptr (GError) err = NULL;
      cxr__diff_scalar (k == 0);
      assert_true (cxr_diff_pair (film, m, &r, 0.37, NULL, NULL, &d[k], &err));
    }
  cxr__diff_scalar (FALSE);
  print_message ("change score %.6f / %.6f, %d x %d map\n", d[0].change_score, d[1].change_score,
                 d[0].map_width, d[0].map_height);
  assert_true (d[0].changed_area_px > 0);
  assert_int_equal (d[0].map_width, d[1].map_width);
  assert_int_equal (d[0].map_height, d[1].map_height);
  assert_memory_equal (d[0].map, d[1].map,
                       sizeof (float) * (gsize) d[0].map_width * d[0].map_height);
  assert_memory_equal (&d[0].change_score, &d[1].change_score, sizeof (double));
  assert_memory_equal (&d[0].change_energy, &d[1].change_energy, sizeof (double));
  assert_memory_equal (&d[0].trend_score, &d[1].trend_score, sizeof (double));
  assert_memory_equal (d[0].region_mean_d, d[1].region_mean_d, sizeof d[0].region_mean_d);
  cxr_diff_clear (&d[0]);
  cxr_diff_clear (&d[1]);
}

/* The sample film's lung fields, found by the shipped segmenter. */
static CxrLungFields *
film_lungs (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrLungModel) lm = shipped_lung_model ();
  CxrLungFields *lf = cxr_lungs_segment (lm, film, &err);
  assert_true (lf && lf->status == CXR_LUNGS_OK);
  return lf;
}

/* The first and last row of lung @label (1 right, 2 left) in @lf. */
static void
lung_rows (const CxrLungFields *lf, int label, int *top, int *bottom)
{
  *top = lf->height;
  *bottom = -1;
  for (int y = 0; y < lf->height; y++)
    for (int x = 0; x < lf->width; x++)
      if (lf->mask[(gsize) y * lf->width + x] == label)
        {
          *top = MIN (*top, y);
          *bottom = MAX (*bottom, y);
        }
}

/* With both films' lung fields the map is confined to them and split into
 * zones: a blob in the lower third of the patient's right lung (the
 * image's left) puts that zone first. Both lungs turning brighter (a
 * diffuse change) vanish when exposure is matched inside the lungs alone
 * (measured: 0.000 of 0.06 left); matched over the thorax window, a third
 * of it stays (0.019: the lungs are much of that window too). */
static void
test_zones (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrLungFields) lf = film_lungs ();
  /* the centre of the right lung's lowest third */
  int top, bottom;
  lung_rows (lf, 1, &top, &bottom);
  double sx = 0, sy = 0, cnt = 0, y0 = top + (bottom - top) * 0.7, y1 = top + (bottom - top) * 0.9;
  for (int y = (int) y0; y < (int) y1; y++)
    for (int x = 0; x < lf->width; x++)
      if (lf->mask[(gsize) y * lf->width + x] == 1)
        {
          sx += x;
          sy += y;
          cnt++;
        }
  assert_true (cnt > 100);
  double cx = sx / cnt, cy = sy / cnt, r = 20;
  g_autoptr (CxrImage) m = copy_film ();
  add_sphere (m, cx, cy, r, 0.12);
  CxrDiffOptions o;
  cxr_diff_options_init (&o);
  assert_int_equal (o.region, CXR_DIFF_REGION_WHOLE_LUNG); /* the default */
  o.region = CXR_DIFF_REGION_LUNG_FIELDS;
  CxrDiffInputs in = { NULL, NULL, lf, lf };
  CxrDiff d;
  assert_true (cxr_diff_pair (film, m, &identity, 0.37, &in, &o, &d, &err));
  assert_string_equal (d.mask_kind, "lungs");
  int best = 0;
  for (int z = 1; z < CXR_DIFF_N_REGIONS; z++)
    if (d.region_score[z] > d.region_score[best])
      best = z;
  assert_string_equal (cxr_diff_region_name (best), "right_lower");
  for (int z = 0; z < CXR_DIFF_N_REGIONS; z++)
    assert_true (d.region_area_px[z] > 0);
  cxr_diff_clear (&d);

  /* both lungs 0.06 brighter (a diffuse change, oedema-like) */
  g_autoptr (CxrImage) hazy = copy_film ();
  for (gsize i = 0; i < (gsize) hazy->width * hazy->height; i++)
    if (lf->mask[i])
      hazy->data[i] += 0.06f;
  CxrDiff thx, own;
  assert_true (cxr_diff_pair (film, hazy, &identity, 0.37, &in, &o, &thx, &err));
  o.exposure_lungs = TRUE;
  assert_true (cxr_diff_pair (film, hazy, &identity, 0.37, &in, &o, &own, &err));
  double left_thx = thx.region_mean_d[3] + thx.region_mean_d[4] + thx.region_mean_d[5];
  double left_own = own.region_mean_d[3] + own.region_mean_d[4] + own.region_mean_d[5];
  print_message ("lungs 0.06 brighter: mean change over the left lung's zones %.3f (thorax"
                 " match), %.3f (lungs)\n",
                 left_thx / 3, left_own / 3);
  if (!(left_thx > 3 * 0.015 && left_own < 3 * 0.005))
    fail_msg ("lungs 0.06 brighter: mean change over the left lung's zones %.3f (thorax match),"
              " %.3f (lungs)",
              left_thx / 3, left_own / 3);
  cxr_diff_clear (&thx);
  cxr_diff_clear (&own);
}

/* The whole lung (cxr_lungs_cavity): every field pixel with its label,
 * and behind the heart: the left lung's cavity reaches medially of its
 * field in its lower half, not in its upper third. A nodule there, outside
 * the fields, scores nothing in the fields' maps and is found in the
 * whole lung's, in the left lower zone. The heart's border beyond the
 * fields, misaligned by 3 px, leaves less there with the edge weight than
 * without it. */
static void
test_whole_lung (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrLungFields) lf = film_lungs ();
  g_autofree guint8 *cav = cxr_lungs_cavity (lf);
  assert_non_null (cav);
  int w = lf->width, h = lf->height;
  gsize n = (gsize) w * h, field = 0, more = 0;
  for (gsize i = 0; i < n; i++)
    {
      if (lf->mask[i])
        assert_int_equal (cav[i], lf->mask[i]);
      field += lf->mask[i] != 0;
      more += cav[i] != 0 && lf->mask[i] == 0;
    }
  print_message ("whole lung: %.0f %% more than the fields\n", 100.0 * more / field);
  assert_true (more > 0.08 * field && more < 0.8 * field);
  /* the left lung's rows and, per row, the field's and the cavity's medial edge */
  int top, bottom;
  lung_rows (lf, 2, &top, &bottom);
  int span = bottom - top;
  double bx = 0, by = 0, nb = 0;
  for (int y = top; y <= bottom; y++)
    {
      int fx = w, cx = w;
      for (int x = 0; x < w; x++)
        {
          if (lf->mask[(gsize) y * w + x] == 2)
            fx = MIN (fx, x);
          if (cav[(gsize) y * w + x] == 2)
            cx = MIN (cx, x);
        }
      if (y < top + span / 4)
        assert_int_equal (cx, fx);
      if (y > top + span * 0.6 && y < top + span * 0.8 && fx - cx > 40)
        {
          /* behind the heart: the middle of the band the cavity adds */
          bx += (cx + fx) / 2.0;
          by += y;
          nb++;
        }
    }
  assert_true (nb > 20);
  double nx = bx / nb, ny = by / nb, r = 18;
  assert_int_equal (lf->mask[(gsize) lround (ny) * w + lround (nx)], 0);
  g_autoptr (CxrImage) m = copy_film ();
  add_sphere (m, nx, ny, r, 0.08);
  CxrDiffOptions o;
  cxr_diff_options_init (&o);
  o.region = CXR_DIFF_REGION_LUNG_FIELDS;
  CxrDiffInputs in = { NULL, NULL, lf, lf };
  CxrDiff fields, whole;
  assert_true (cxr_diff_pair (film, m, &identity, 0.37, &in, &o, &fields, &err));
  o.region = CXR_DIFF_REGION_WHOLE_LUNG;
  assert_true (cxr_diff_pair (film, m, &identity, 0.37, &in, &o, &whole, &err));
  assert_string_equal (fields.mask_kind, "lungs");
  assert_string_equal (whole.mask_kind, "whole_lung");
  print_message ("a nodule behind the heart: change_score %.1f (fields), %.1f (whole lung)\n",
                 fields.change_score, whole.change_score);
  /* (measured 14.0: the blob's area, ~1,000 px^2, times its contrast
   * over the threshold; 16.2 without the edge weight) */
  assert_true (fields.change_score == 0 && whole.change_score > 8);
  assert_true (whole.region_score[5] > 0.9 * whole.change_score); /* left_lower */
  assert_true (whole.mask_area_px > 1.08 * fields.mask_area_px);
  cxr_diff_clear (&fields);
  cxr_diff_clear (&whole);

  /* misaligned by 3 px: the heart's and the domes' borders */
  g_autoptr (CxrImage) shifted = cxr_image_new (film->width, film->height);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      shifted->data[(gsize) y * w + x] = film->data[(gsize) y * w + MIN (x + 3, w - 1)];
  CxrDiff weighed, raw, inside;
  assert_true (cxr_diff_pair (film, shifted, &identity, 0.37, &in, &o, &weighed, &err));
  o.edge_shift_mm = 0;
  assert_true (cxr_diff_pair (film, shifted, &identity, 0.37, &in, &o, &raw, &err));
  o.region = CXR_DIFF_REGION_LUNG_FIELDS;
  assert_true (cxr_diff_pair (film, shifted, &identity, 0.37, &in, &o, &inside, &err));
  /* beyond the fields: the whole lung's score less the fields' (the
   * fields' pixels are weighed alike either way) */
  double bw = weighed.change_score - inside.change_score,
         br = raw.change_score - inside.change_score;
  print_message ("misaligned by 3 px, beyond the fields: change_score %.1f with the edge weight,"
                 " %.1f without\n",
                 bw, br);
  assert_true (br > 20 && bw < 0.6 * br);
  cxr_diff_clear (&inside);
  cxr_diff_clear (&weighed);
  cxr_diff_clear (&raw);
}

/* A change that takes lung out of MOVING's field (the segmenter leaves a
 * new opacity at the base out, as it leaves out the dome: the left lung
 * ends above it) is still compared in the whole lung, which is FIXED's
 * alone; the lung fields compare only what both films' fields cover, so
 * there the change hides itself. (The whole lung of both films, as it
 * was until 2026-12-07, scored 0 here too.) */
static void
test_change_leaves_moving_field (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrLungFields) lf = film_lungs ();
  int w = lf->width, h = lf->height;
  gsize n = (gsize) w * h;
  int top, bottom;
  lung_rows (lf, 2, &top, &bottom);
  /* an opacity in the left lung's lower third, at its middle column */
  int cy = bottom - (bottom - top) / 6, lo = w, hi = -1;
  for (int x = 0; x < w; x++)
    if (lf->mask[(gsize) cy * w + x] == 2)
      {
        lo = MIN (lo, x);
        hi = MAX (hi, x);
      }
  assert_true (hi - lo > 60);
  double cx = (lo + hi) / 2.0, r = 25;
  g_autoptr (CxrImage) m = copy_film ();
  /* MOVING's left lung ends above the opacity */
  CxrLungFields gone = *lf;
  g_autofree guint8 *mask = g_memdup2 (lf->mask, n);
  gone.mask = mask;
  add_sphere (m, cx, cy, r, 0.08);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if (y > cy - 1.2 * r && mask[(gsize) y * w + x] == 2)
        mask[(gsize) y * w + x] = 0;
  CxrDiffOptions o;
  cxr_diff_options_init (&o);
  CxrDiffInputs kept = { NULL, NULL, lf, lf }, left = { NULL, NULL, lf, &gone };
  double score[4];
  for (int k = 0; k < 4; k++)
    {
      o.region = k < 2 ? CXR_DIFF_REGION_WHOLE_LUNG : CXR_DIFF_REGION_LUNG_FIELDS;
      CxrDiff d;
      assert_true (cxr_diff_pair (film, m, &identity, 0.37, k % 2 ? &left : &kept, &o, &d, &err));
      score[k] = d.change_score;
      cxr_diff_clear (&d);
    }
  print_message ("an opacity MOVING's field leaves out: change_score %.1f (whole lung; %.1f with "
                 "the field kept), %.1f (fields; %.1f)\n",
                 score[1], score[0], score[3], score[2]);
  assert_true (score[0] > 8 && score[1] == score[0]);
  assert_true (score[2] > 8 && score[3] < 0.1 * score[2]);
}

/* A film's own edge is not compared: with lung fields that reach the
 * film's last rows (a film cut at the domes), a band of change in the
 * last 1 % of rows scores nothing, the same band 4 % up does. */
static void
test_film_edge (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrLungFields) lf = film_lungs ();
  int w = lf->width, h = lf->height;
  gsize n = (gsize) w * h;
  CxrLungFields cut = *lf;
  g_autofree guint8 *mask = g_memdup2 (lf->mask, n);
  cut.mask = mask;
  int top, bottom;
  lung_rows (lf, 1, &top, &bottom);
  /* each lung's columns at its lowest rows, carried down to the edge */
  for (int y = bottom - 40; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        guint8 above = mask[(gsize) (bottom - 41) * w + x];
        if (above)
          mask[(gsize) y * w + x] = above;
      }
  CxrDiffOptions o;
  cxr_diff_options_init (&o);
  o.region = CXR_DIFF_REGION_LUNG_FIELDS;
  CxrDiffInputs in = { NULL, NULL, &cut, &cut };
  double score[2];
  int from[2] = { h - h / 100, h - h / 25 - h / 100 };
  for (int k = 0; k < 2; k++)
    {
      g_autoptr (CxrImage) m = copy_film ();
      for (int y = from[k]; y < from[k] + h / 100; y++)
        for (int x = 0; x < w; x++)
          if (mask[(gsize) y * w + x])
            m->data[(gsize) y * w + x] = MIN (m->data[(gsize) y * w + x] + 0.2f, 0.96f);
      CxrDiff d;
      assert_true (cxr_diff_pair (film, m, &identity, 0.37, &in, &o, &d, &err));
      score[k] = d.change_score;
      cxr_diff_clear (&d);
    }
  print_message ("a band of change at the film's edge: change_score %.1f; 4 %% up: %.1f\n",
                 score[0], score[1]);
  assert_true (score[0] == 0 && score[1] > 20);
}

static void
test_failed_registration (void **state)
{
  CxrRegistration bad = identity;
  bad.status = CXR_REGISTER_FAILED;
  CxrDiff d;
  g_autoptr (GError) err = NULL;
  assert_false (cxr_diff_pair (film, film, &bad, NAN, NULL, NULL, &d, &err));
  assert_non_null (strstr (err->message, "registration failed"));
  /* unknown spacing: no area in mm^2 */
  assert_true (cxr_diff_pair (film, film, &identity, NAN, NULL, NULL, &d, NULL));
  assert_true (isnan (d.changed_area_mm2));
  cxr_diff_clear (&d);
}

/* @im at half its size, by 2 x 2 means. */
static CxrImage *
half_size (const CxrImage *im)
{
  CxrImage *h = cxr_image_new (im->width / 2, im->height / 2);
  for (int y = 0; y < h->height; y++)
    for (int x = 0; x < h->width; x++)
      {
        const float *p = im->data + (gsize) (2 * y) * im->width + 2 * x;
        h->data[(gsize) y * h->width + x] = 0.25f * (p[0] + p[1] + p[im->width] + p[im->width + 1]);
      }
  return h;
}

/* The scores do not depend on the film's resolution: the same film and
 * the same opacity at half the size score alike, since change_score and
 * trend_score count px^2 of the film brought to 1024 px (in the film's
 * own px^2, as until 2026-12-07, the half-size pair scored a quarter);
 * the changed area stays in the film's own px^2. */
static void
test_scores_resolution_free (void **state)
{
  g_autoptr (CxrImage) m = copy_film ();
  add_sphere (m, 300, 420, 20, 0.12);
  g_autoptr (CxrImage) fh = half_size (film);
  g_autoptr (CxrImage) mh = half_size (m);
  CxrDiff full, half;
  g_autoptr (GError) err = NULL;
  assert_true (cxr_diff_pair (film, m, &identity, 0.37, NULL, NULL, &full, &err));
  assert_true (cxr_diff_pair (fh, mh, &identity, 0.74, NULL, NULL, &half, &err));
  print_message ("an opacity at %d px and at %d px: change_score %.1f and %.1f, trend_score %.1f "
                 "and %.1f, changed area %.0f and %.0f px^2\n",
                 film->width, fh->width, full.change_score, half.change_score, full.trend_score,
                 half.trend_score, full.changed_area_px, half.changed_area_px);
  assert_true (full.change_score > 10);
  assert_true (half.change_score > 0.8 * full.change_score
               && half.change_score < 1.25 * full.change_score);
  assert_true (half.trend_score > 0.8 * full.trend_score
               && half.trend_score < 1.25 * full.trend_score);
  assert_true (half.changed_area_px > 0.2 * full.changed_area_px
               && half.changed_area_px < 0.3 * full.changed_area_px);
  cxr_diff_clear (&full);
  cxr_diff_clear (&half);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_no_change),
    cmocka_unit_test (test_reexposed_copy),
    cmocka_unit_test (test_blob_found),
    cmocka_unit_test (test_model_predictions_reused),
    cmocka_unit_test (test_failed_registration),
    cmocka_unit_test (test_map_follows_the_field),
    cmocka_unit_test (test_warp_wide_is_scalar),
    cmocka_unit_test (test_zones),
    cmocka_unit_test (test_whole_lung),
    cmocka_unit_test (test_film_edge),
    cmocka_unit_test (test_change_leaves_moving_field),
    cmocka_unit_test (test_scores_resolution_free),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
