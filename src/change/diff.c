/* SPDX-License-Identifier: MIT
 *
 * Difference maps for a registered pair: temporal subtraction (Kano et al.,
 * Med. Phys. 1994) made robust to the exposure and pose of real visits.
 *
 * 1. FIXED is area-resampled to a working grid (512 px on its longer side);
 *    MOVING is resampled the same way and warped into that grid with the
 *    registration (bilinear on the resampled film, so nothing aliases).
 * 2. Mask: with both films' lung fields 'ok' (lungs.h), FIXED's whole
 *    lung (mask_kind 'whole_lung', cxr_lungs_cavity: the fields, and the
 *    lung behind the heart and below the domes) or, with
 *    CXR_DIFF_REGION_LUNG_FIELDS, the pixels that are lung field in FIXED
 *    and whose point in MOVING is lung field too (mask_kind 'lungs'): real
 *    change is in the lungs, and the shoulders, arms, neck and chest wall
 *    outside them only carry misalignment. The whole lung asks nothing of
 *    MOVING's fields: a new opacity at a base that the segmenter leaves
 *    out of MOVING's field (its lung then ends above it) would otherwise
 *    take itself out of the comparison (until 2026-12-07 the whole lung
 *    was both films', and a nodule below a dome or behind the heart went
 *    unseen in 4 of 40 re-posed dev pairs for that alone). Else the thorax
 *    window (mask_kind 'thorax'): inside both films, away from the film
 *    border (8 % of the width each side, 5 % at the top, the lowest 15 %
 *    (abdomen) left out). Either way, away from pixels that are black
 *    (collimation, < 0.02) or saturated (burned-in markers, > 0.97) in
 *    either film, and from either film's outermost EDGE_MARGIN of rows and
 *    columns (the film's own border: a cut edge, an edge strip, where a
 *    film cropped or turned brings in what the other lacks), spread by 1 %
 *    of the grid. (Without the margin, the whole lung of a film cut at the
 *    domes reached its bright bottom edge, which a turned copy moved: the
 *    trend score of bench/progression_synth.py's 00001684_000 series read
 *    15.6 at the first visit, its nodule then about 6 mm, and the growth
 *    was not flagged.)
 * 3. Exposure: the warped MOVING is quantile-matched to FIXED inside the
 *    mask (65 quantiles, piecewise linear), so a darker or harder exposure
 *    is not change.
 * 4. d = matched MOVING - FIXED, smoothed by a Gaussian of smooth_mm
 *    (default 2 mm; smooth_px when the spacing is unknown) with normalised
 *    convolution inside the mask. Positive d: brighter now (new opacity).
 * 5. Threshold t = max(min_threshold, noise_k x 1.4826 MAD(d)) inside the
 *    mask. change_score = sum over the mask of max(|d| - t, 0), in px^2 of
 *    FIXED brought to 1024 px on its longer side (REF_SIDE: until
 *    2026-12-07 in FIXED's own px^2, so a 256-px film's scores were 16
 *    times smaller than the same change on a 1024-px film, under the
 *    trend score's limit floor of 1); changed area counts |d| > t, in
 *    FIXED's own px^2; the peak is the largest |d|.
 *    trend_score is the same sum at tt = max(min_trend_threshold, trend_noise_k
 *    x sigma) (default max(0.015, 2 sigma)): the progression signal. One
 *    pair needs t's margin against its own noise; a trend test across a
 *    series filters noise by consistency and can use fainter change (on
 *    synthetic slowly growing nodules, bench/progression_synth.py, the
 *    score at t only rises once the growth has made the lesion large).
 * 6. With a model: the registered MOVING is run through the classifier;
 *    per-location cosine distance between its feature map and FIXED's
 *    (feature_change: the mean), and per finding the largest increase of
 *    the class activation map (registered MOVING minus FIXED), over the
 *    map's cells that are at least a quarter inside the mask. FIXED and
 *    MOVING themselves are scored as whole films; analyze passes in the
 *    predictions it already made of them rather than have them made again.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "change-private.h"
#include "cxr/diff.h"
#include "cxr/error.h"
#include "image-private.h"
#include "simd-private.h"
#include "util-private.h"

/* the share of each film's width and height at its edges left out of
 * the comparison (step 2 above) */
#define EDGE_MARGIN 0.015

/* the film size the scores are measured at (below): the NIH release's
 * 1024 px, where every figure and limit of these scores was first set */
#define REF_SIDE 1024.0

void
cxr_diff_options_init (CxrDiffOptions *o)
{
  memset (o, 0, sizeof *o);
  o->size = 512;
  o->smooth_mm = 2.0;
  o->smooth_px = 6.0;
  o->min_threshold = 0.03;
  o->noise_k = 0;
  o->min_trend_threshold = 0.015;
  o->trend_noise_k = 0;
  o->region = CXR_DIFF_REGION_WHOLE_LUNG;
  o->edge_shift_mm = 2.0;
}

const char *
cxr_diff_region_name (int r)
{
  static const char *names[CXR_DIFF_N_REGIONS]
      = { "right_upper", "right_middle", "right_lower", "left_upper", "left_middle", "left_lower" };
  return r >= 0 && r < CXR_DIFF_N_REGIONS ? names[r] : NULL;
}

void
cxr_diff_clear (CxrDiff *d)
{
  g_clear_pointer (&d->probability_delta, g_free);
  g_clear_pointer (&d->heatmap_delta_max, g_free);
  g_clear_pointer (&d->map, g_free);
}

/* The exposure match's quantiles: 65 evenly from the 1st to the 99th
 * percentile, and the tails at 0.1, 0.2, 0.4 and 0.8 % from either end.
 * With 65 evenly from the minimum to the maximum (until 2026-12-08) the
 * top segment ran from the 98.4th percentile to the brightest pixel (a
 * marker, a clipped base) and a straight line there missed a gamma change
 * by up to 0.04 at dense bone: on a never-seen synthetic stable series
 * (bench/progression_synth.py --train256, seed 6: one 256-px film
 * re-posed and re-exposed) the spine under the right dome read 0.038-0.043
 * of change in three copies, over the 0.03 threshold, and the series was
 * flagged acute_change. */
static const double tail_p[] = { 0.001, 0.002, 0.004, 0.008 };
#define N_TAIL     ((int) G_N_ELEMENTS (tail_p))
#define N_EVEN     65
#define N_QUANTILE (N_EVEN + 2 * N_TAIL)

static double
quantile_p (int k)
{
  if (k < N_TAIL)
    return tail_p[k];
  if (k >= N_TAIL + N_EVEN)
    return 1 - tail_p[N_QUANTILE - 1 - k];
  return 0.01 + 0.98 * (k - N_TAIL) / (N_EVEN - 1);
}

/* The N_QUANTILE quantiles (quantile_p) of values where mask, from a
 * 4096-bin histogram. */
static void
quantiles (const float *v, const float *mask, gsize n, double *out)
{
  enum { BINS = 4096 };
  g_autofree double *hist = g_new0 (double, BINS);
  double tot = 0;
  for (gsize i = 0; i < n; i++)
    if (mask[i] > 0.5f)
      {
        int b = CLAMP ((int) (v[i] * BINS), 0, BINS - 1);
        hist[b] += 1;
        tot += 1;
      }
  double cum = 0;
  int b = 0;
  for (int k = 0; k < N_QUANTILE; k++)
    {
      double target = tot * quantile_p (k);
      while (b < BINS - 1 && cum + hist[b] < target)
        cum += hist[b++];
      double frac = hist[b] > 0 ? (target - cum) / hist[b] : 0;
      out[k] = (b + CLAMP (frac, 0.0, 1.0)) / BINS;
    }
}

/* Piecewise-linear map from qa to qb (both increasing, q entries), with
 * the end segments extended at slope 1. seg[b] is the first k with
 * qa[k] >= b / LUT, so a lookup starts at most a step or two before its
 * segment instead of scanning all q breakpoints. */
enum { LUT = 1024 };

typedef struct {
  const double *qa, *qb;
  int q;
  guint8 seg[LUT + 1];
} Matcher;

static void
matcher_init (Matcher *m, const double *qa, const double *qb, int q)
{
  g_assert (q <= 255);
  m->qa = qa;
  m->qb = qb;
  m->q = q;
  int k = 0;
  for (int b = 0; b <= LUT; b++)
    {
      while (k < q && qa[k] < (double) b / LUT)
        k++;
      m->seg[b] = (guint8) k;
    }
}

static float
match (const Matcher *m, float v)
{
  const double *qa = m->qa, *qb = m->qb;
  int q = m->q;
  if (v <= qa[0])
    return (float) (qb[0] + (v - qa[0]));
  int b = (int) (v * LUT);
  int k = b <= 0 ? 1 : b > LUT ? q : MAX (1, m->seg[b] - 1);
  while (k < q && v > qa[k])
    k++;
  if (k == q)
    return (float) (qb[q - 1] + (v - qa[q - 1]));
  double span = qa[k] - qa[k - 1];
  double t = span > 1e-9 ? (v - qa[k - 1]) / span : 0.5;
  return (float) (qb[k - 1] + t * (qb[k] - qb[k - 1]));
}

/* One row of MOVING's grid @Mg (@mw x @mh) warped onto FIXED's grid: the
 * point of grid column u is (rx + (u + du) cux + dv cvx, ry + (u + du) cuy
 * + dv cvy) with du, dv = k times the field's @fx, @fy there (FIXED px);
 * into @gx, @gy the points, @val the bilinear sample (0 outside) and @in
 * whether the point is inside. */
typedef struct {
  const float *Mg;
  int mw, mh;
  double rx, ry, cux, cuy, cvx, cvy, k;
} RowWarp;

static void
warp_row_scalar (const RowWarp *w, const float *fx, const float *fy, int u0, int gw, double *gx,
                 double *gy, float *val, guint8 *in)
{
  int mw = w->mw, mh = w->mh;
  for (int u = u0; u < gw; u++)
    {
      double du = w->k * fx[u], dv = w->k * fy[u];
      double x = w->rx + (u + du) * w->cux + dv * w->cvx;
      double y = w->ry + (u + du) * w->cuy + dv * w->cvy;
      gboolean inside = x >= 0 && y >= 0 && x <= mw - 1 && y <= mh - 1;
      float v = 0;
      if (inside)
        {
          int x0 = MIN ((int) x, mw - 2), y0 = MIN ((int) y, mh - 2);
          float ax = (float) (x - x0), ay = (float) (y - y0);
          const float *p = w->Mg + (gsize) y0 * mw + x0;
          float top = p[0] + ax * (p[1] - p[0]), bot = p[mw] + ax * (p[mw + 1] - p[mw]);
          v = top + ay * (bot - top);
        }
      gx[u] = x;
      gy[u] = y;
      val[u] = v;
      in[u] = (guint8) inside;
    }
}

#ifdef CXR_HAVE_AVX2
/* warp_row_scalar four columns at a time: each lane the scalar code's
 * double and float operations in its order, no fused multiply-adds, so
 * the same bits (test_warp_wide_is_scalar). */
__attribute__ ((target ("avx2"))) static void
warp_row_avx2 (const RowWarp *w, const float *fx, const float *fy, int gw, double *gx, double *gy,
               float *val, guint8 *in)
{
  int mw = w->mw, mh = w->mh, u = 0;
  const __m256d k = _mm256_set1_pd (w->k), rx = _mm256_set1_pd (w->rx), ry = _mm256_set1_pd (w->ry),
                cux = _mm256_set1_pd (w->cux), cuy = _mm256_set1_pd (w->cuy),
                cvx = _mm256_set1_pd (w->cvx), cvy = _mm256_set1_pd (w->cvy),
                zero = _mm256_setzero_pd (), xhi = _mm256_set1_pd (mw - 1),
                yhi = _mm256_set1_pd (mh - 1), step = _mm256_set1_pd (4);
  const __m128i xlast = _mm_set1_epi32 (mw - 2), ylast = _mm_set1_epi32 (mh - 2);
  __m256d uu = _mm256_setr_pd (0, 1, 2, 3);
  for (; u + 4 <= gw; u += 4, uu = _mm256_add_pd (uu, step))
    {
      __m256d du = _mm256_mul_pd (k, _mm256_cvtps_pd (_mm_loadu_ps (fx + u)));
      __m256d dv = _mm256_mul_pd (k, _mm256_cvtps_pd (_mm_loadu_ps (fy + u)));
      __m256d t = _mm256_add_pd (uu, du);
      __m256d x
          = _mm256_add_pd (_mm256_add_pd (rx, _mm256_mul_pd (t, cux)), _mm256_mul_pd (dv, cvx));
      __m256d y
          = _mm256_add_pd (_mm256_add_pd (ry, _mm256_mul_pd (t, cuy)), _mm256_mul_pd (dv, cvy));
      _mm256_storeu_pd (gx + u, x);
      _mm256_storeu_pd (gy + u, y);
      __m256d inside = _mm256_and_pd (
          _mm256_and_pd (_mm256_cmp_pd (x, zero, _CMP_GE_OQ), _mm256_cmp_pd (y, zero, _CMP_GE_OQ)),
          _mm256_and_pd (_mm256_cmp_pd (x, xhi, _CMP_LE_OQ), _mm256_cmp_pd (y, yhi, _CMP_LE_OQ)));
      int m = _mm256_movemask_pd (inside);
      for (int l = 0; l < 4; l++)
        in[u + l] = (guint8) ((m >> l) & 1);
      if (m == 0)
        {
          _mm_storeu_ps (val + u, _mm_setzero_ps ());
          continue;
        }
      /* lanes outside sample the grid's origin, then give 0 */
      x = _mm256_and_pd (x, inside);
      y = _mm256_and_pd (y, inside);
      __m128 ax, ay, p[4];
      cxr__bilinear_taps4_avx2 (w->Mg, mw, xlast, ylast, x, y, &ax, &ay, p);
      __m128 p00 = p[0], p01 = p[1], p10 = p[2], p11 = p[3];
      __m128 top = _mm_add_ps (p00, _mm_mul_ps (ax, _mm_sub_ps (p01, p00)));
      __m128 bot = _mm_add_ps (p10, _mm_mul_ps (ax, _mm_sub_ps (p11, p10)));
      __m128 v = _mm_add_ps (top, _mm_mul_ps (ay, _mm_sub_ps (bot, top)));
      __m128i keep = _mm_setr_epi32 (-(m & 1), -((m >> 1) & 1), -((m >> 2) & 1), -((m >> 3) & 1));
      v = _mm_and_ps (v, _mm_castsi128_ps (keep));
      _mm_storeu_ps (val + u, v);
    }
  /* GCC leaves the upper halves dirty here (no vzeroupper before the call
   * or the return: seen in the object code), and every SSE instruction
   * after then waits on them: the maps' later steps ran 2.3 times slower */
  _mm256_zeroupper ();
  warp_row_scalar (w, fx, fy, u, gw, gx, gy, val, in);
}
#endif

static int diff_avx2_off = -1; /* cxr__diff_scalar: 1 scalar, 0 as the CPU allows */

/* For the tests: the maps' scalar loops only (@scalar), or as the CPU
 * allows; both give the same bits. */
void
cxr__diff_scalar (gboolean scalar)
{
  diff_avx2_off = scalar ? 1 : 0;
}

static void
warp_row (const RowWarp *w, const float *fx, const float *fy, int gw, double *gx, double *gy,
          float *val, guint8 *in)
{
#ifdef CXR_HAVE_AVX2
  if (diff_avx2_off != 1 && cxr__cpu_avx2_fma ())
    {
      warp_row_avx2 (w, fx, fy, gw, gx, gy, val, in);
      return;
    }
#endif
  warp_row_scalar (w, fx, fy, 0, gw, gx, gy, val, in);
}

/**
 * cxr_diff_write_map:
 * Writes @d's signed map (cxr_diff_pair) as an 8-bit grey PNG at @path:
 * 0 where nothing was compared, else 128 + round(d / scale), 1..255, with
 * scale = the largest |d| compared over 127 (so the peak is kept; the rest
 * within half a level). About 30-60 KB for a 512-px map, against 512 KB
 * as float16 .npy. cxr_diff_read_map reads it back.
 *
 * Returns: the scale (pair_changes.map_scale), or NAN with @error set.
 */
double
cxr_diff_write_map (const CxrDiff *d, const char *path, GError **error)
{
  g_return_val_if_fail (d->map != NULL, NAN);
  int w = d->map_width, h = d->map_height;
  gsize n = (gsize) w * h;
  float peak = 0;
  for (gsize i = 0; i < n; i++)
    if (!isnan (d->map[i]))
      peak = MAX (peak, fabsf (d->map[i]));
  double scale = peak > 0 ? peak / 127.0 : 1.0 / 127;
  g_autofree guint8 *px = g_new (guint8, n);
  for (gsize i = 0; i < n; i++)
    if (isnan (d->map[i]))
      px[i] = 0;
    else
      {
        long q = lround (d->map[i] / scale);
        px[i] = (guint8) (128 + CLAMP (q, -127, 127));
      }
  if (!cxr_image_save_png8 (px, w, h, 1, path, 1, error))
    return NAN;
  return scale;
}

/**
 * cxr_diff_decode_map:
 * @name: what the bytes are, for messages
 * @scale: pair_changes.map_scale of the map
 *
 * Decodes a map cxr_diff_write_map wrote from its file's bytes.
 *
 * Returns: (transfer full): @width x @height signed intensity changes,
 * NAN where nothing was compared; %NULL with @error set.
 */
float *
cxr_diff_decode_map (const char *name, const guint8 *data, gsize len, double scale, int *width,
                     int *height, GError **error)
{
  CxrImageInfo info;
  g_autoptr (CxrImage) im = NULL;
  if (!cxr_image_decode (name, data, len, NULL, &info, &im, error))
    return NULL;
  if (info.bit_depth != 8 || g_strcmp0 (info.color_type, "gray") != 0 || !(scale > 0))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: not a difference map (8-bit grey with a positive scale)", name);
      return NULL;
    }
  gsize n = (gsize) im->width * im->height;
  float *m = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    {
      int v = (int) lroundf (im->data[i] * 255.f);
      m[i] = v == 0 ? NAN : (float) ((v - 128) * scale);
    }
  *width = im->width;
  *height = im->height;
  return m;
}

/**
 * cxr_diff_read_map:
 * @scale: pair_changes.map_scale of the map
 *
 * Reads a map cxr_diff_write_map wrote: cxr_diff_decode_map of the
 * file at @path.
 */
float *
cxr_diff_read_map (const char *path, double scale, int *width, int *height, GError **error)
{
  gsize len = 0;
  g_autofree guint8 *buf = cxr_image_read_file (path, NULL, &len, error);
  if (buf == NULL)
    return NULL;
  return cxr_diff_decode_map (path, buf, len, scale, width, height, error);
}

/* One overlay pixel: FIXED in grey (dimmed outside the compared mask), the
 * change beyond the threshold @t in colour (full at 3 @t), the mask's
 * outline in green. Change within the threshold (exposure, rib residue:
 * what the pair's own noise makes) stays grey. */
static void
overlay_px (guint8 *rgb, float fixed, float d, gboolean in, gboolean edge, float t, float inv2t)
{
  if (edge)
    {
      rgb[0] = 40;
      rgb[1] = 210;
      rgb[2] = 60;
      return;
    }
  float g = CLAMP (fixed, 0.0f, 1.0f) * (in ? 1.0f : 0.55f);
  float a = in && fabsf (d) > t ? MIN ((fabsf (d) - t) * inv2t, 1.0f) : 0.0f;
  /* red: brighter now (new opacity); blue: darker now */
  float r = d > 0 ? 1.0f : 0.1f, b = d > 0 ? 0.1f : 1.0f;
  rgb[0] = (guint8) (255 * ((1 - a) * g + a * r) + 0.5f);
  rgb[1] = (guint8) (255 * ((1 - a) * g + a * 0.15f) + 0.5f);
  rgb[2] = (guint8) (255 * ((1 - a) * g + a * b) + 0.5f);
}

/**
 * cxr_diff_render_overlay:
 * @fixed: the earlier film of the pair
 * @map: (array): its map (cxr_diff_read_map), @width x @height
 * @threshold: no colour up to this change, full colour at three times it
 * @outline: draw the compared region's outline (maps inside lung fields)
 *
 * Returns: (transfer full): RGB, @width x @height, the colour overlay of
 * what changed on the earlier film.
 */
guint8 *
cxr_diff_render_overlay (const CxrImage *fixed, const float *map, int width, int height,
                         double threshold, gboolean outline)
{
  gsize n = (gsize) width * height;
  double k = MAX (width, height) / (double) MAX (fixed->width, fixed->height);
  g_autofree float *F = g_new (float, n);
  cxr__resample (fixed->data, fixed->width, fixed->height, F, width, height, k, k,
                 (fixed->width - 1) / 2.0, (fixed->height - 1) / 2.0, (width - 1) / 2.0,
                 (height - 1) / 2.0, NULL);
  guint8 *rgb = g_new (guint8, 3 * n);
  float inv2t = (float) (1 / (2 * MAX (threshold, 1e-6)));
#define IN(j) (!isnan (map[j]))
  for (gsize i = 0; i < n; i++)
    {
      int x = (int) (i % width), y = (int) (i / width);
      gboolean in = IN (i);
      gboolean edge = outline && in
                      && (x == 0 || y == 0 || x == width - 1 || y == height - 1 || !IN (i - 1)
                          || !IN (i + 1) || !IN (i - width) || !IN (i + width));
      overlay_px (rgb + 3 * i, F[i], in ? map[i] : 0.f, in, edge, (float) threshold, inv2t);
    }
#undef IN
  return rgb;
}

/* @pu's maps (the later film's, as the classifier saw it: each map spans
 * its whole film) sampled at the centres of FIXED's @map_w x @map_h cells
 * through @reg, bilinearly; a cell whose point falls off the later film's
 * map is not @valid. @cam: n_classes planes, @feat: dim planes. */
static void
warp_maps (const CxrPrediction *pu, const CxrImage *fixed, const CxrImage *moving,
           const CxrRegistration *reg, int map_w, int map_h, float *cam, float *feat, guint8 *valid)
{
  gsize hw = (gsize) map_w * map_h, uhw = (gsize) pu->map_w * pu->map_h;
  for (int cy = 0; cy < map_h; cy++)
    for (int cx = 0; cx < map_w; cx++)
      {
        gsize i = (gsize) cy * map_w + cx;
        double fx = (cx + 0.5) * fixed->width / map_w - 0.5;
        double fy = (cy + 0.5) * fixed->height / map_h - 0.5;
        double mx, my;
        cxr_register_point (reg, fixed->width, fixed->height, moving->width, moving->height, fx, fy,
                            &mx, &my);
        double gx = (mx + 0.5) * pu->map_w / moving->width - 0.5;
        double gy = (my + 0.5) * pu->map_h / moving->height - 0.5;
        valid[i] = gx >= -0.5 && gy >= -0.5 && gx <= pu->map_w - 0.5 && gy <= pu->map_h - 0.5;
        gx = CLAMP (gx, 0, pu->map_w - 1);
        gy = CLAMP (gy, 0, pu->map_h - 1);
        int x0 = MIN ((int) gx, MAX (pu->map_w - 2, 0)),
            y0 = MIN ((int) gy, MAX (pu->map_h - 2, 0));
        int x1 = MIN (x0 + 1, pu->map_w - 1), y1 = MIN (y0 + 1, pu->map_h - 1);
        float ax = (float) (gx - x0), ay = (float) (gy - y0);
        gsize i00 = (gsize) y0 * pu->map_w + x0, i01 = (gsize) y0 * pu->map_w + x1;
        gsize i10 = (gsize) y1 * pu->map_w + x0, i11 = (gsize) y1 * pu->map_w + x1;
#define BILERP(p)                                                                                  \
  ((1 - ay) * ((1 - ax) * (p)[i00] + ax * (p)[i01]) + ay * ((1 - ax) * (p)[i10] + ax * (p)[i11]))
        for (int c = 0; c < pu->n_classes; c++)
          cam[c * hw + i] = BILERP (pu->cam + c * uhw);
        for (int d = 0; d < pu->dim; d++)
          feat[d * hw + i] = BILERP (pu->features + d * uhw);
#undef BILERP
      }
}

/* The lung at film coordinates (x, y) of a @w x @h label mask (nearest
 * pixel): 1 right, 2 left, 0 none. */
static inline int
lung_at (const guint8 *mask, int w, int h, double x, double y)
{
  int xi = (int) lround (x), yi = (int) lround (y);
  return xi >= 0 && yi >= 0 && xi < w && yi < h ? mask[(gsize) yi * w + xi] : 0;
}

/* The zone (0 upper, 1 middle, 2 lower third of the lung's height) of row
 * @y of FIXED for lung @label (1 right, 2 left), from the lung's rows. */
static int
zone_of (const int *top, const int *bottom, int label, double y)
{
  double h = bottom[label] - top[label] + 1;
  int z = (int) floor ((y - top[label]) / h * 3);
  return CLAMP (z, 0, 2);
}

/* Behind the heart and below the domes the compared lung holds the
 * heart's borders and the diaphragm's: edges that move with the heart
 * beat, the breath and the pose, so two films of an unchanged chest
 * differ there by up to the edge's contrast. There (@beyond) the signed
 * map is weighed down by what a misalignment of @shift_mm would leave at
 * FIXED's edges: d x 1 / sqrt(1 + (|grad F| shift / t)^2), with F
 * smoothed as the map is and t the change threshold. Where the film is
 * flat (the lung seen through the heart, away from its border) the
 * weight stays near 1, so a nodule there keeps its contrast. */
static void
edge_weight (const float *F, int gw, int gh, double sigma, const guint8 *beyond, double shift_mm,
             double spacing_mm, double k, double t, float *scratch, float *D)
{
  gsize n = (gsize) gw * gh;
  g_autofree float *Fs = g_memdup2 (F, n * sizeof (float));
  cxr__blur (Fs, gw, gh, sigma, scratch);
  /* the shift in grid px (2 px of the film per mm when the spacing is
   * unknown: NIH's 1024-px films are 0.14-0.17 mm per px x 3) */
  double mm_px = isnan (spacing_mm) || spacing_mm <= 0 ? 0.5 : spacing_mm / k;
  double s = shift_mm / mm_px / t;
  for (int v = 0; v < gh; v++)
    for (int u = 0; u < gw; u++)
      {
        gsize i = (gsize) v * gw + u;
        if (!beyond[i])
          continue;
        int u0 = MAX (u - 1, 0), u1 = MIN (u + 1, gw - 1), v0 = MAX (v - 1, 0),
            v1 = MIN (v + 1, gh - 1);
        double gx = (Fs[(gsize) v * gw + u1] - Fs[(gsize) v * gw + u0]) / MAX (u1 - u0, 1);
        double gy = (Fs[(gsize) v1 * gw + u] - Fs[(gsize) v0 * gw + u]) / MAX (v1 - v0, 1);
        double e = hypot (gx, gy) * s;
        D[i] = (float) (D[i] / sqrt (1 + e * e));
      }
}

/**
 * cxr_diff_pair:
 * @fixed_spacing_mm: pixel spacing of FIXED, or NAN when unknown
 * @out: (out caller-allocates): measures; free with cxr_diff_clear()
 *
 * The signed map itself is @out->map (cxr_diff_write_map stores it).
 *
 * Returns: %FALSE if the registration failed (no map is made for it).
 */
gboolean
cxr_diff_pair (const CxrImage *fixed, const CxrImage *moving, const CxrRegistration *reg,
               double fixed_spacing_mm, const CxrDiffInputs *inputs, const CxrDiffOptions *options,
               CxrDiff *out, GError **error)
{
  CxrDiffOptions opt;
  if (options)
    opt = *options;
  else
    cxr_diff_options_init (&opt);
  const CxrDiffInputs none = { 0 };
  const CxrDiffInputs in = inputs ? *inputs : none;
  memset (out, 0, sizeof *out);
  out->changed_area_mm2 = out->feature_change = out->embedding_distance = NAN;
  if (reg->status == CXR_REGISTER_FAILED)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "registration failed: no difference map is made from it");
      return FALSE;
    }
  gint64 t0 = g_get_monotonic_time ();
  double k = opt.size / (double) MAX (fixed->width, fixed->height);
  int gw = MAX (1, (int) lround (fixed->width * k)), gh = MAX (1, (int) lround (fixed->height * k));
  gsize n = (gsize) gw * gh;
  double km = opt.size / (double) MAX (moving->width, moving->height);
  int mw = MAX (1, (int) lround (moving->width * km)),
      mh = MAX (1, (int) lround (moving->height * km));
  g_autofree float *F = g_new (float, n), *Mg = g_new (float, (gsize) mw * mh);
  g_autofree float *M = g_new (float, n), *mask = g_new (float, n), *D = g_new (float, n);
  cxr__resample (fixed->data, fixed->width, fixed->height, F, gw, gh, k, k,
                 (fixed->width - 1) / 2.0, (fixed->height - 1) / 2.0, (gw - 1) / 2.0,
                 (gh - 1) / 2.0, NULL);
  cxr__resample (moving->data, moving->width, moving->height, Mg, mw, mh, km, km,
                 (moving->width - 1) / 2.0, (moving->height - 1) / 2.0, (mw - 1) / 2.0,
                 (mh - 1) / 2.0, NULL);

  g_debug ("diff: resampled at %.2f ms", (g_get_monotonic_time () - t0) / 1e3);
  /* Warp and mask. Grid (u, v) of FIXED -> grid (gx, gy) of MOVING is
   * affine: the registration between the two resamplings. */
  double c0x, c0y, cux, cuy, cvx, cvy;
  {
    /* the global part; the deformable field moves each point first */
    CxrRegistration g = *reg;
    g.field.nx = g.field.ny = 0;
    double x0, y0, x1, y1, x2, y2;
    double fx0 = (0 - (gw - 1) / 2.0) / k + (fixed->width - 1) / 2.0;
    double fy0 = (0 - (gh - 1) / 2.0) / k + (fixed->height - 1) / 2.0;
    cxr_register_point (&g, fixed->width, fixed->height, moving->width, moving->height, fx0, fy0,
                        &x0, &y0);
    cxr_register_point (&g, fixed->width, fixed->height, moving->width, moving->height, fx0 + 1 / k,
                        fy0, &x1, &y1);
    cxr_register_point (&g, fixed->width, fixed->height, moving->width, moving->height, fx0,
                        fy0 + 1 / k, &x2, &y2);
    c0x = (x0 - (moving->width - 1) / 2.0) * km + (mw - 1) / 2.0;
    c0y = (y0 - (moving->height - 1) / 2.0) * km + (mh - 1) / 2.0;
    cux = (x1 - x0) * km;
    cuy = (y1 - y0) * km;
    cvx = (x2 - x0) * km;
    cvy = (y2 - y0) * km;
  }
  /* the field on the working grid, FIXED px */
  g_autofree float *fux = g_new0 (float, n), *fuy = g_new0 (float, n);
  if (reg->field.nx >= 4 && reg->field.ny >= 4)
    {
      g_autofree double *xs = g_new (double, gw), *ys = g_new (double, gh);
      for (int u = 0; u < gw; u++)
        xs[u] = (u - (gw - 1) / 2.0) / k + (fixed->width - 1) / 2.0;
      for (int v = 0; v < gh; v++)
        ys[v] = (v - (gh - 1) / 2.0) / k + (fixed->height - 1) / 2.0;
      cxr_deform_field_sample (&reg->field, fixed->width, fixed->height, xs, gw, ys, gh, fux, fuy);
    }
  gboolean lungs
      = in.fixed_lungs && in.moving_lungs && in.fixed_lungs->status == CXR_LUNGS_OK
        && in.moving_lungs->status == CXR_LUNGS_OK && in.fixed_lungs->width == fixed->width
        && in.fixed_lungs->height == fixed->height && in.moving_lungs->width == moving->width
        && in.moving_lungs->height == moving->height;
  /* the compared lung: the fields, or the whole lung the films show
   * (cxr_lungs_cavity: behind the heart, below the domes) */
  g_autofree guint8 *own_fcav = NULL;
  const guint8 *fcav = NULL;
  if (lungs && opt.region == CXR_DIFF_REGION_WHOLE_LUNG)
    fcav = in.fixed_cavity ? in.fixed_cavity : (own_fcav = cxr_lungs_cavity (in.fixed_lungs));
  const guint8 *freg = fcav ? fcav : lungs ? in.fixed_lungs->mask : NULL;
  out->mask_kind = !lungs ? "thorax" : fcav ? "whole_lung" : "lungs";
  /* each lung's first and last row in FIXED, for the zones */
  int ltop[3] = { 0, 0, 0 }, lbot[3] = { 0, 0, 0 };
  if (lungs)
    {
      const CxrLungFields *l = in.fixed_lungs;
      ltop[1] = ltop[2] = l->height;
      lbot[1] = lbot[2] = -1;
      for (int y = 0; y < l->height; y++)
        {
          /* whether the row holds each lung (byte compares the compiler
           * vectorises: this scans every px of the film) */
          const guint8 *row = freg + (gsize) y * l->width;
          guint8 has[3] = { 0, 0, 0 };
          for (int x = 0; x < l->width; x++)
            {
              has[1] |= row[x] == 1;
              has[2] |= row[x] == 2;
            }
          for (int lab = 1; lab <= 2; lab++)
            if (has[lab])
              {
                ltop[lab] = MIN (ltop[lab], y);
                lbot[lab] = MAX (lbot[lab], y);
              }
        }
    }
  /* FIXED's film px of each grid column and row (the grid is axis-aligned
   * on FIXED), and each row's zone in either lung */
  g_autofree int *fxi = g_new (int, gw), *fyi = g_new (int, gh);
  g_autofree guint8 *zrow = g_new (guint8, 3 * (gsize) gh);
  for (int u = 0; u < gw; u++)
    fxi[u] = (int) lround ((u - (gw - 1) / 2.0) / k + (fixed->width - 1) / 2.0);
  for (int v = 0; v < gh; v++)
    {
      double fy = (v - (gh - 1) / 2.0) / k + (fixed->height - 1) / 2.0;
      fyi[v] = (int) lround (fy);
      zrow[3 * v + 1] = lungs ? (guint8) zone_of (ltop, lbot, 1, fy) : 0;
      zrow[3 * v + 2] = lungs ? (guint8) zone_of (ltop, lbot, 2, fy) : 0;
    }
  g_autofree guint8 *lab = g_new0 (guint8, n); /* 1 + lung * 3 + zone, 0 outside */
  /* whole lung: 1 where the compared lung is beyond FIXED's field */
  g_autofree guint8 *beyond = fcav ? g_new0 (guint8, n) : NULL;
  g_autofree float *thorax = g_new (float, n); /* the window: exposure is matched there */
  float *bad = D;                              /* scratch: black or saturated in either film */
  g_autofree double *rgx = g_new (double, gw), *rgy = g_new (double, gw);
  g_autofree guint8 *rin = g_new (guint8, gw);
  for (int v = 0; v < gh; v++)
    {
      double rv = (v + 0.5) / gh;
      gboolean row_in = rv > 0.05 && rv < 0.85;
      /* a FIXED px of field is k grid steps */
      RowWarp rw = { Mg, mw, mh, c0x + v * cvx, c0y + v * cvy, cux, cuy, cvx, cvy, k };
      gsize i0 = (gsize) v * gw;
      warp_row (&rw, fux + i0, fuy + i0, gw, rgx, rgy, M + i0, rin);
      for (int u = 0; u < gw; u++)
        {
          gsize i = i0 + u;
          double gx = rgx[u], gy = rgy[u];
          gboolean inside = rin[u];
          float val = M[i];
          gboolean region;
          double ru = (u + 0.5) / gw;
          gboolean window = row_in && ru > 0.08 && ru < 0.92;
          if (lungs)
            {
              /* FIXED's whole lung; or lung field in FIXED whose point
               * in MOVING is lung field too */
              const CxrLungFields *fl_ = in.fixed_lungs, *ml_ = in.moving_lungs;
              int xi = fxi[u], yi = fyi[v];
              gboolean on = xi >= 0 && yi >= 0 && xi < fl_->width && yi < fl_->height;
              gsize fi = on ? (gsize) yi * fl_->width + xi : 0;
              int fl = on ? freg[fi] : 0;
              if (fcav)
                region = fl != 0;
              else
                {
                  double mx = (gx - (mw - 1) / 2.0) / km + (moving->width - 1) / 2.0;
                  double my = (gy - (mh - 1) / 2.0) / km + (moving->height - 1) / 2.0;
                  region = fl && lung_at (ml_->mask, ml_->width, ml_->height, mx, my);
                }
              if (region && (fl == 1 || fl == 2))
                lab[i] = (guint8) (1 + (fl - 1) * 3 + zrow[3 * v + fl]);
              if (region && beyond)
                beyond[i] = !fl_->mask[fi];
            }
          else
            region = window;
          mask[i] = inside && region ? 1.f : 0.f;
          thorax[i] = inside && (window || region) ? 1.f : 0.f;
          float f = F[i];
          gboolean edge = gx < EDGE_MARGIN * (mw - 1) || gy < EDGE_MARGIN * (mh - 1)
                          || gx > (1 - EDGE_MARGIN) * (mw - 1) || gy > (1 - EDGE_MARGIN) * (mh - 1)
                          || u < EDGE_MARGIN * (gw - 1) || v < EDGE_MARGIN * (gh - 1)
                          || u > (1 - EDGE_MARGIN) * (gw - 1) || v > (1 - EDGE_MARGIN) * (gh - 1);
          bad[i] = (!inside || edge || f < 0.02f || f > 0.97f || val < 0.02f || val > 0.97f) ? 1.f
                                                                                             : 0.f;
        }
    }
  g_autofree float *scratch = g_new (float, n);
  cxr__blur (bad, gw, gh, 0.01 * opt.size, scratch);
  double mask_n = 0, thorax_n = 0;
  for (gsize i = 0; i < n; i++)
    {
      if (bad[i] > 0.02f)
        mask[i] = thorax[i] = 0;
      mask_n += mask[i];
      thorax_n += thorax[i];
    }
  out->mask_area_px = mask_n / (k * k);
  if (mask_n < 100)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "the films overlap on %.0f px of thorax: nothing to compare", mask_n);
      return FALSE;
    }

  g_debug ("diff: warped and masked at %.2f ms", (g_get_monotonic_time () - t0) / 1e3);
  /* Exposure: quantile matching, over the thorax window (lungs,
   * mediastinum, heart, diaphragm: what does not change with the lungs'
   * disease anchors the match, so a lung that turns brighter stays
   * brighter) or, with exposure_lungs, inside the compared mask alone. */
  double qf[N_QUANTILE], qm[N_QUANTILE];
  const float *ref = opt.exposure_lungs || thorax_n < mask_n ? mask : thorax;
  quantiles (F, ref, n, qf);
  quantiles (M, ref, n, qm);
  Matcher mt;
  matcher_init (&mt, qm, qf, N_QUANTILE);
  for (gsize i = 0; i < n; i++)
    D[i] = mask[i] > 0.5f ? (match (&mt, M[i]) - F[i]) : 0.f;

  g_debug ("diff: matched at %.2f ms", (g_get_monotonic_time () - t0) / 1e3);
  /* Smoothing by normalised convolution inside the mask. */
  double sigma = isnan (fixed_spacing_mm) || fixed_spacing_mm <= 0
                     ? opt.smooth_px * k
                     : opt.smooth_mm / (fixed_spacing_mm / k);
  g_autofree float *wm = g_memdup2 (mask, n * sizeof (float));
  cxr__blur (D, gw, gh, sigma, scratch);
  cxr__blur (wm, gw, gh, sigma, scratch);
  for (gsize i = 0; i < n; i++)
    D[i] = mask[i] > 0.5f && wm[i] > 1e-3f ? D[i] / wm[i] : 0.f;
  if (beyond)
    edge_weight (F, gw, gh, sigma, beyond, opt.edge_shift_mm, fixed_spacing_mm, k,
                 opt.min_threshold, scratch, D);

  g_debug ("diff: smoothed at %.2f ms", (g_get_monotonic_time () - t0) / 1e3);
  /* Threshold from the robust noise level; the measures. */
  g_autofree float *absd = g_new (float, n);
  gsize na = 0;
  for (gsize i = 0; i < n; i++)
    if (mask[i] > 0.5f)
      absd[na++] = fabsf (D[i]);
  double med;
  {
    /* median by histogram of |d| in [0, 0.25) */
    enum { HB = 8192 };
    g_autofree guint32 *hist = g_new0 (guint32, HB);
    for (gsize i = 0; i < na; i++)
      hist[MIN ((int) (absd[i] / 0.25f * HB), HB - 1)]++;
    gsize cum = 0;
    int b = 0;
    while (b < HB - 1 && cum + hist[b] < na / 2)
      cum += hist[b++];
    med = (b + 0.5) / HB * 0.25;
  }
  out->noise_sigma = 1.4826 * med;
  double t = MAX (opt.min_threshold, opt.noise_k * out->noise_sigma);
  out->threshold = t;
  double tt = MAX (opt.min_trend_threshold, opt.trend_noise_k * out->noise_sigma);
  out->trend_threshold = tt;
  double e2 = 0, score = 0, tscore = 0, area = 0, peak = 0;
  double rs[CXR_DIFF_N_REGIONS] = { 0 }, ra[CXR_DIFF_N_REGIONS] = { 0 },
         rd[CXR_DIFF_N_REGIONS] = { 0 };
  gsize ip = 0;
  for (gsize i = 0; i < n; i++)
    {
      if (mask[i] <= 0.5f)
        continue;
      double a = fabs (D[i]);
      e2 += D[i] * D[i];
      if (lab[i])
        {
          ra[lab[i] - 1] += 1;
          rd[lab[i] - 1] += D[i];
          rs[lab[i] - 1] += a > t ? a - t : 0;
        }
      if (a > t)
        {
          score += a - t;
          area += 1;
        }
      if (a > tt)
        tscore += a - tt;
      if (a > peak)
        {
          peak = a;
          ip = i;
        }
    }
  double px2 = 1.0 / (k * k); /* FIXED px^2 per grid px */
  /* the scores' px^2 are those of FIXED brought to REF_SIDE px on its
   * longer side, so that films of any resolution share one scale */
  double rs1 = REF_SIDE / (double) MAX (fixed->width, fixed->height);
  double rpx2 = px2 * rs1 * rs1;
  out->change_energy = 1e4 * e2 / mask_n;
  out->change_score = score * rpx2;
  for (int r = 0; r < CXR_DIFF_N_REGIONS; r++)
    {
      out->region_score[r] = rs[r] * rpx2;
      out->region_area_px[r] = ra[r] * px2;
      out->region_mean_d[r] = ra[r] > 0 ? rd[r] / ra[r] : NAN;
    }
  out->trend_score = tscore * rpx2;
  out->changed_area_px = area * px2;
  if (!isnan (fixed_spacing_mm) && fixed_spacing_mm > 0)
    out->changed_area_mm2 = out->changed_area_px * fixed_spacing_mm * fixed_spacing_mm;
  out->peak_x_px = ((double) (ip % gw) - (gw - 1) / 2.0) / k + (fixed->width - 1) / 2.0;
  out->peak_y_px = ((double) (ip / gw) - (gh - 1) / 2.0) / k + (fixed->height - 1) / 2.0;
  out->peak_value = D[ip];

  g_debug ("diff: measured at %.2f ms", (g_get_monotonic_time () - t0) / 1e3);
  /* Through the classifier's eyes: the later film's activation and
   * feature maps, carried to the earlier film's map cells through the
   * registration (each film is seen by the classifier once). */
  if (opt.model)
    {
      g_autoptr (CxrPrediction) own_f = NULL, own_u = NULL;
      const CxrPrediction *pf = in.fixed_prediction, *pu = in.moving_prediction;
      if (pf == NULL)
        pf = own_f = cxr_model_predict (opt.model, fixed);
      if (pu == NULL)
        pu = own_u = cxr_model_predict (opt.model, moving);
      gsize hw = (gsize) pf->map_w * pf->map_h;
      g_autofree float *wcam = g_new (float, (gsize) pf->n_classes * hw);
      g_autofree float *wfeat = g_new (float, (gsize) pf->dim * hw);
      g_autofree guint8 *valid = g_new (guint8, hw);
      warp_maps (pu, fixed, moving, reg, pf->map_w, pf->map_h, wcam, wfeat, valid);
      /* over the cells where both feature vectors have a direction */
      double fc = 0;
      gsize nf = 0;
      for (gsize i = 0; i < hw; i++)
        {
          double c = valid[i] ? cxr_model_cosine_distance (pf->features + i, wfeat + i, pf->dim, hw)
                              : NAN;
          if (!isnan (c))
            {
              fc += c;
              nf++;
            }
        }
      out->feature_change = nf ? fc / nf : NAN;
      out->embedding_distance
          = cxr_model_cosine_distance (pf->embedding, pu->embedding, pf->dim, 1);
      out->n_classes = pf->n_classes;
      out->probability_delta = g_new (double, pf->n_classes);
      out->heatmap_delta_max = g_new (double, pf->n_classes);
      /* the activation map's cells that are a quarter or more in the mask
       * (the map covers the grid, as the classifier saw the film) */
      g_autofree double *cover = g_new0 (double, hw);
      g_autofree int *cxs = g_new (int, gw);
      for (int u = 0; u < gw; u++)
        cxs[u] = u * pf->map_w / gw;
      for (int v = 0; v < gh; v++)
        {
          double *crow = cover + (gsize) (v * pf->map_h / gh) * pf->map_w;
          const float *mrow = mask + (gsize) v * gw;
          /* a run of columns in one cell summed in a register, in the
           * same order as one add per column into the row (same bits) */
          for (int u = 0; u < gw;)
            {
              int c = cxs[u];
              double acc = crow[c];
              for (; u < gw && cxs[u] == c; u++)
                acc += mrow[u];
              crow[c] = acc;
            }
        }
      double cell = (double) gw * gh / hw;
      for (int c = 0; c < pf->n_classes; c++)
        {
          out->probability_delta[c] = pu->probability[c] - pf->probability[c];
          double mx = -INFINITY;
          for (gsize i = 0; i < hw; i++)
            if (valid[i] && cover[i] >= 0.25 * cell)
              mx = MAX (mx, wcam[c * hw + i] - pf->cam[c * hw + i]);
          out->heatmap_delta_max[c] = isfinite (mx) ? mx : 0;
        }
    }

  g_debug ("diff: model at %.2f ms", (g_get_monotonic_time () - t0) / 1e3);
  /* the map, NAN where nothing was compared */
  out->map = g_steal_pointer (&D);
  for (gsize i = 0; i < n; i++)
    if (!(mask[i] > 0.5f))
      out->map[i] = NAN;
  out->map_width = gw;
  out->map_height = gh;
  out->elapsed_ms = (g_get_monotonic_time () - t0) / 1000.0;
  return TRUE;
}
