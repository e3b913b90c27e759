/* SPDX-License-Identifier: MIT
 *
 * Registration, the deformable stage: after the global similarity, a
 * smooth displacement field makes the lungs line up where a similarity
 * cannot (breathing, posture, the heart's size on AP films).
 *
 * 1. Block shifts. On the top grid (256 px), both films' intensities
 *    lightly smoothed (Gaussian, 1 px), and with both films' lung fields
 *    their smoothed masks added (deform_lung_weight), so that the fields'
 *    outlines pull as hard as the ribs: blocks of 64, 48, 32, 24 and 16 px
 *    (one level each, down to deform_min_block), every half block, inside
 *    the thorax window, are found in the moving film warped by the current
 *    estimate, within +-16 px at the first level and +-4..8 after, by
 *    normalised cross-correlation (the correlation of the zero-mean block
 *    with the search area, over the area's local energy from running
 *    sums; Lewis 1995), with a parabolic sub-pixel peak. The correlation
 *    is summed directly, every block found first at half resolution,
 *    then within FINE_PX of that. A block whose
 *    best NCC is under MIN_NCC, or whose shift departs from its
 *    neighbours' median by more than OUTLIER_PX, is dropped.
 *    (Phase correlation, which whitens the spectrum, was tried first: on
 *    these smooth films it follows noise, and gained a tenth as much.)
 * 2. After each level the field (register-field.c: a cubic B-spline over
 *    FIXED's pixels) is fitted to the blocks' total displacements, each
 *    weighted by its NCC; if the warp folds anywhere on the film
 *    (Jacobian <= 0), the bending penalty is raised fourfold and it is
 *    refitted.
 * 3. Evidence: NCC of the smoothed intensities inside FIXED's lung fields
 *    (its thorax window without them) before alignment, after the global
 *    stage and after the field, and the overlap (Dice) of FIXED's lung
 *    fields with MOVING's warped there, on every second pixel, black and
 *    saturated pixels left out. The field is kept when it raises that NCC,
 *    or the overlap by 0.01 at almost the same NCC (register.c decides the
 *    status).
 * 4. A second choice where the lungs still overlap by less than ok_dice:
 *    a field with the outlines weighted more (0.5), and the one (or the
 *    global stage) with the highest NCC + Dice is kept, giving up at most
 *    0.05 of the global stage's NCC, never to less than the films'
 *    unmoved NCC (cxr__deform). On the 133 same-view
 *    series1024 pairs this made 112 ok instead of 96
 *    (bench/register_deform.py; chosen on those pairs).
 */
#include <math.h>
#include <string.h>

#include "register-private.h"
#include "image-private.h"
#include "util-private.h"

#define MIN_NCC          0.3 /* a block's best correlation must reach this */
#define OUTLIER_PX       2.0 /* grid px from the neighbours' median shift */
/* the intensities' pull (refine_intensity): the targets' total weight and
 * the bending penalty, chosen on series1024's 133 same-view pairs
 * (bench/register_deform.py --refine: lung NCC 0.854 -> 0.886 with 10
 * steps; 300 and 0.05, the blocks' scale, gave 0.871); the total weight
 * of the pins that hold the lung fields' outline where the blocks put it
 * (Dice 0.937 -> 0.948 and NCC 0.886 -> 0.893 at 20 steps; 1000 held the
 * outline a little more and lined up less, 100 the other way) */
#define REFINE_TOTAL_W   10000.0
#define REFINE_LAMBDA    0.01
#define REFINE_PIN_W     300.0
/* a refined field whose lungs overlap by this much less than the blocks'
 * field did asks for the other fields too (cxr__deform) */
#define REFINE_DICE_LOSS 0.015

/* The levels, on the top grid: block size and how far (px each way) a
 * block may move; the first finds the diaphragm's large excursions. */
static const struct {
  int block, search;
} levels[] = { { 64, 16 }, { 48, 8 }, { 32, 8 }, { 24, 6 }, { 16, 4 } };

/* --- the field on a grid ------------------------------------------------------ */

/* A level: a fixed and a moving grid, the similarity between them and how
 * the fixed grid sits on its film. */
typedef struct {
  const Grid *f, *m;
  Sim S;
  int fw, fh;           /* FIXED film, px */
  double kx, ky;        /* fixed grid px per film px, across and down */
  float *dx, *dy;       /* the field on the fixed grid, grid px */
  const float *fi, *mi; /* both films' smoothed intensities; mi NAN where MOVING has no data */
  const float *gf, *gm; /* what blocks are matched on: the same, plus the lung fields' guide */
} Level;

static inline double
grid_to_film_x (const Level *L, double gx)
{
  return (gx - (L->f->n - 1) / 2.0) / L->kx + (L->fw - 1) / 2.0;
}

static inline double
grid_to_film_y (const Level *L, double gy)
{
  return (gy - (L->f->n - 1) / 2.0) / L->ky + (L->fh - 1) / 2.0;
}

/* L->dx, dy from @field */
static void
level_field (Level *L, const CxrDeformField *field)
{
  int n = L->f->n;
  double *xs = g_new (double, n), *ys = g_new (double, n);
  for (int i = 0; i < n; i++)
    {
      xs[i] = grid_to_film_x (L, i);
      ys[i] = grid_to_film_y (L, i);
    }
  cxr_deform_field_sample (field, L->fw, L->fh, xs, n, ys, n, L->dx, L->dy);
  for (gsize i = 0; i < (gsize) n * n; i++)
    {
      L->dx[i] *= (float) L->kx;
      L->dy[i] *= (float) L->ky;
    }
  g_free (xs);
  g_free (ys);
}

/* The range of det(I + grad u) of @L's field over FIXED's lungs (or its
 * thorax window): how much the field locally shrinks (< 1) or swells
 * (> 1) the film, by central differences on the grid (the same in film
 * px: the grid's scales cancel in the determinant). */
static void
jacobian_range (const Level *L, const float *flung, double *jmin, double *jmax)
{
  int n = L->f->n;
  double lo = INFINITY, hi = -INFINITY;
  for (int y = 1; y < n - 1; y++)
    for (int x = 1; x < n - 1; x++)
      {
        gsize i = (gsize) y * n + x;
        if (!(flung ? flung[i] > 0.5f : L->f->weight[i] > 0.5f))
          continue;
        double uxx = (L->dx[i + 1] - L->dx[i - 1]) / 2, uxy = (L->dx[i + n] - L->dx[i - n]) / 2;
        double uyx = (L->dy[i + 1] - L->dy[i - 1]) / 2, uyy = (L->dy[i + n] - L->dy[i - n]) / 2;
        double det = (1 + uxx) * (1 + uyy) - uxy * uyx;
        lo = MIN (lo, det);
        hi = MAX (hi, det);
      }
  *jmin = isfinite (lo) ? lo : 1;
  *jmax = isfinite (hi) ? hi : 1;
}

/* Where fixed grid point (x, y) lands on the moving grid. */
static inline void
level_map (const Level *L, int x, int y, double *mx, double *my)
{
  gsize i = (gsize) y * L->f->n + x;
  double c = (L->f->n - 1) / 2.0;
  double px = x + L->dx[i] - c, py = y + L->dy[i] - c;
  *mx = L->S.a * px - L->S.b * py + L->S.tx + c;
  *my = L->S.b * px + L->S.a * py + L->S.ty + c;
}

#ifdef CXR_HAVE_AVX2
/* level_warp's row @y from column 0, four pixels at a time, the same
 * operations in the same order (level_map's float then double steps, the
 * bilinear's float ones; no fused multiply-adds), so the same bits.
 * Returns the first column left to the scalar loop. */
__attribute__ ((target ("avx2"))) static int
level_warp_row_avx2 (const Level *L, const float *src, int y, float *o)
{
  int n = L->f->n, x = 0;
  const double c = (n - 1) / 2.0;
  const __m256d cc = _mm256_set1_pd (c);
  const __m128 lane = _mm_setr_ps (0, 1, 2, 3);
  const __m128 fy0 = _mm_set1_ps ((float) y);
  const float *dx = L->dx + (gsize) y * n, *dy = L->dy + (gsize) y * n;
  for (; x + 4 <= n; x += 4)
    {
      /* px = x + dx - c: the first add in float, as level_map does */
      __m128 fx = _mm_add_ps (_mm_add_ps (_mm_set1_ps ((float) x), lane), _mm_loadu_ps (dx + x));
      __m128 fy = _mm_add_ps (fy0, _mm_loadu_ps (dy + x));
      __m256d px = _mm256_sub_pd (_mm256_cvtps_pd (fx), cc);
      __m256d py = _mm256_sub_pd (_mm256_cvtps_pd (fy), cc);
      __m256d mx, my;
      cxr__sim_map4_avx2 (&L->S, c, px, py, &mx, &my);
      _mm_storeu_ps (o + x, cxr__bilinear4_avx2 (src, n, mx, my));
    }
  return x;
}
#endif

/* @src of the moving grid (NAN where it has no data) warped onto rows
 * @y0..@y1 of the fixed grid; NAN outside it. */
static void
level_warp_rows (const Level *L, const float *src, float *out, int y0, int y1)
{
  int n = L->f->n;
  gboolean wide = cxr__register_avx2 ();
  for (int y = y0; y <= y1; y++)
    {
      int x0 = 0;
#ifdef CXR_HAVE_AVX2
      if (wide)
        x0 = level_warp_row_avx2 (L, src, y, out + (gsize) y * n);
#endif
      for (int x = x0; x < n; x++)
        {
          double mx, my;
          gboolean in;
          level_map (L, x, y, &mx, &my);
          float v = cxr__bilinear (src, n, n, mx, my, &in);
          out[(gsize) y * n + x] = in ? v : NAN;
        }
    }
}

/* the whole fixed grid */
static void
level_warp (const Level *L, const float *src, float *out)
{
  level_warp_rows (L, src, out, 0, L->f->n - 1);
}

typedef struct {
  double gx, gy; /* centre, grid px */
  double sx, sy; /* measured residual shift, grid px */
  double peak;   /* its NCC */
  gboolean keep;
  int ix, iy; /* its place among the level's blocks, in steps */
} Block;

/* Summed-area tables of the n x n image @a and (unless @c2 is NULL) of
 * its square, (n + 1)^2 each with a first row and column of 0; a NAN counts as 0 (an area that
 * holds one is never matched). Each row's running sum is kept in a
 * register, so the only dependency is on the row above. */
static void
summed_areas (const float *a, int n, double *c1, double *c2)
{
  int N = n + 1;
  memset (c1, 0, sizeof (double) * N);
  if (c2)
    memset (c2, 0, sizeof (double) * N);
  for (int y = 0; y < n; y++)
    {
      double r1 = 0, r2 = 0;
      gsize row = (gsize) (y + 1) * N;
      c1[row] = 0;
      if (c2)
        c2[row] = 0;
      for (int x = 0; x < n; x++)
        {
          double v = a[(gsize) y * n + x];
          if (isnan (v))
            v = 0;
          r1 += v;
          c1[row + x + 1] = c1[row - N + x + 1] + r1;
          if (c2)
            {
              r2 += v * v;
              c2[row + x + 1] = c2[row - N + x + 1] + r2;
            }
        }
    }
}

/* The sum over the B x B window at (x, y) from a table of summed_areas. */
static inline double
box_sum (const double *c, int N, int x, int y, int B)
{
  return c[(gsize) (y + B) * N + x + B] - c[(gsize) y * N + x + B] - c[(gsize) (y + B) * N + x]
         + c[(gsize) y * N + x];
}

static double
parabola (double l, double c, double r)
{
  double d = l - 2 * c + r;
  return d < 0 ? CLAMP (0.5 * (l - r) / d, -0.5, 0.5) : 0;
}

/* Scratch of one level: the search area is P = B + 2 S px. */
typedef struct {
  int B, S, P;
  double *td, *ad, *num; /* the block, the area and the m x m sums */
  const double *c1, *c2; /* summed_areas of the warped MOVING (n + 1)^2 */
  double *ncc;
} Matcher;

/* Every block is correlated with its search area by direct sums, first
 * at half resolution (half the block, half the search), then within
 * FINE_PX of that at full. Per block, direct sums over the whole search
 * cost about (2 S + 1)^2 B^2 multiply-adds: 16 px blocks 2 us, 24 px 9,
 * 32 px 27, where FFTs took 6, 14 and ~25 plus FFTW's planning of each
 * size (1.4-2.7 ms, once a process), and won at 48 and 64 px (18 against
 * 63 us at 48). Halved, the 64 px level of a field went 4.3-4.8 -> 1.6
 * ms, the 48 px level 1.8-1.9 -> 1.3 ms (eight series1024 pairs, a fresh
 * process each, FFTW planning included), and the 32, 24 and 16 px levels
 * together about 8 ms less per field; the lungs line up as well or
 * better (bench/register_deform.py: series1024 lung NCC 0.853 -> 0.856,
 * the train256-derived pairs 0.857 -> 0.858). */

/* The direct correlation of the B x B block @t with the P x P area @a
 * (both double) at the m x m shifts, into @num (m x m). Each sum is kept
 * in four partial sums (x mod 4, rows in order) added as (s0 + s1) +
 * (s2 + s3): products of floats are exact in double, so the AVX2 and
 * the scalar versions give the same bits. B is a multiple of 4. */
static void
corr_direct_scalar (const double *t, int B, const double *a, int P, int m, double *num)
{
  for (int v = 0; v < m; v++)
    for (int u = 0; u < m; u++)
      {
        double s[4] = { 0, 0, 0, 0 };
        for (int y = 0; y < B; y++)
          {
            const double *tr = t + (gsize) y * B, *ar = a + (gsize) (y + v) * P + u;
            for (int x = 0; x < B; x += 4)
              for (int k = 0; k < 4; k++)
                s[k] += tr[x + k] * ar[x + k];
          }
        num[v * m + u] = (s[0] + s[1]) + (s[2] + s[3]);
      }
}

#ifdef CXR_HAVE_AVX2
__attribute__ ((target ("avx2,fma"))) static inline double
lanes_sum (__m256d acc)
{
  double s[4];
  _mm256_storeu_pd (s, acc);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

/* corr_direct_scalar four shifts at a time, the block's row loaded once
 * for them (a fused multiply-add of an exact product rounds as the add) */
__attribute__ ((target ("avx2,fma"))) static void
corr_direct_avx2 (const double *t, int B, const double *a, int P, int m, double *num)
{
  for (int v = 0; v < m; v++)
    {
      int u = 0;
      for (; u + 4 <= m; u += 4)
        {
          __m256d s0 = _mm256_setzero_pd (), s1 = s0, s2 = s0, s3 = s0;
          for (int y = 0; y < B; y++)
            {
              const double *tr = t + (gsize) y * B, *ar = a + (gsize) (y + v) * P + u;
              for (int x = 0; x < B; x += 4)
                {
                  __m256d tv = _mm256_loadu_pd (tr + x);
                  s0 = _mm256_fmadd_pd (tv, _mm256_loadu_pd (ar + x), s0);
                  s1 = _mm256_fmadd_pd (tv, _mm256_loadu_pd (ar + x + 1), s1);
                  s2 = _mm256_fmadd_pd (tv, _mm256_loadu_pd (ar + x + 2), s2);
                  s3 = _mm256_fmadd_pd (tv, _mm256_loadu_pd (ar + x + 3), s3);
                }
            }
          num[v * m + u] = lanes_sum (s0);
          num[v * m + u + 1] = lanes_sum (s1);
          num[v * m + u + 2] = lanes_sum (s2);
          num[v * m + u + 3] = lanes_sum (s3);
        }
      for (; u < m; u++)
        {
          __m256d s0 = _mm256_setzero_pd ();
          for (int y = 0; y < B; y++)
            {
              const double *tr = t + (gsize) y * B, *ar = a + (gsize) (y + v) * P + u;
              for (int x = 0; x < B; x += 4)
                s0 = _mm256_fmadd_pd (_mm256_loadu_pd (tr + x), _mm256_loadu_pd (ar + x), s0);
            }
          num[v * m + u] = lanes_sum (s0);
        }
    }
}
#endif

static int avx2_off = -1; /* cxr__register_scalar: 1 scalar, 0 as the CPU allows */

/**
 * cxr__register_avx2:
 * Whether the registration's AVX2 loops run (the block sums, the level
 * warps, the refinement's residuals): where the CPU has AVX2 and FMA,
 * unless the tests asked for the scalar ones. Both give the same bits.
 */
gboolean
cxr__register_avx2 (void)
{
#ifdef CXR_HAVE_AVX2
  return cxr__cpu_avx2_fma () && avx2_off != 1;
#else
  return FALSE;
#endif
}

/* For the tests: the registration's scalar loops only (@scalar), or as
 * the CPU allows. */
void
cxr__register_scalar (gboolean scalar)
{
  avx2_off = scalar ? 1 : 0;
}

/**
 * cxr__deform_block_sums:
 * The correlation of the B x B block @t with the P x P area @a at the
 * m x m shifts (P >= B + m - 1, B a multiple of 4): num[v * m + u] =
 * sum of t[y][x] a[y + v][x + u], the same bits with or without AVX2.
 */
void
cxr__deform_block_sums (const double *t, int B, const double *a, int P, int m, double *num)
{
#ifdef CXR_HAVE_AVX2
  if (cxr__register_avx2 ())
    {
      corr_direct_avx2 (t, B, a, P, m, num);
      return;
    }
#endif
  corr_direct_scalar (t, B, a, P, m, num);
}

/* B a multiple of 4 (the direct sums') */
static void
matcher_init (Matcher *mt, int B, int S)
{
  int P = B + 2 * S, n = 2 * S + 1;
  g_assert (B % 4 == 0);
  memset (mt, 0, sizeof *mt);
  mt->B = B;
  mt->S = S;
  mt->P = P;
  mt->ncc = g_new (double, n * n);
  mt->td = g_new (double, (gsize) B * B);
  mt->ad = g_new (double, (gsize) P * P);
  mt->num = g_new (double, n * n);
}

static void
matcher_clear (Matcher *mt)
{
  g_free (mt->td);
  g_free (mt->ad);
  g_free (mt->num);
  g_free (mt->ncc);
}

/* The block of FIXED at (x0, y0) found in the warped MOVING @w (n x n),
 * searched within S px of the shift (@cx, @cy): FALSE when the search
 * area leaves the data or the block is flat. */
static gboolean
match_one (Matcher *mt, const float *fi, const float *w, int n, int x0, int y0, int cx, int cy,
           Block *out)
{
  int B = mt->B, P = mt->P, S = mt->S, m = 2 * S + 1;
  /* the area: FIXED's block moved by the centre shift, S px around */
  int ax = x0 + cx - S, ay = y0 + cy - S;
  if (ax < 0 || ay < 0 || ax + P > n || ay + P > n)
    return FALSE;
  double mean = 0;
  for (int y = 0; y < B; y++)
    for (int x = 0; x < B; x++)
      mean += fi[(gsize) (y0 + y) * n + x0 + x];
  mean /= B * B;
  /* the zero-mean block (its floats) and the area, as doubles for the
   * sums */
  double tt = 0;
  for (int y = 0; y < B; y++)
    for (int x = 0; x < B; x++)
      {
        double v = fi[(gsize) (y0 + y) * n + x0 + x] - mean;
        mt->td[y * B + x] = (float) v;
        tt += v * v;
      }
  for (int y = 0; y < P; y++)
    for (int x = 0; x < P; x++)
      {
        float v = w[(gsize) (ay + y) * n + ax + x];
        if (isnan (v))
          return FALSE;
        mt->ad[y * P + x] = v;
      }
  if (tt < 1e-8 * B * B)
    return FALSE;
  /* numerator: correlation of the zero-mean block with the area */
  cxr__deform_block_sums (mt->td, B, mt->ad, P, m, mt->num);
  int best = -1;
  double bv = -2, N = (double) B * B;
  for (int v = 0; v < m; v++)
    for (int u = 0; u < m; u++)
      {
        int k = v * m + u;
        double s1 = box_sum (mt->c1, n + 1, ax + u, ay + v, B);
        double s2 = box_sum (mt->c2, n + 1, ax + u, ay + v, B);
        double var = s2 - s1 * s1 / N;
        double num = mt->num[k];
        /* flat (the tables' rounding is ~1e-10 of a 256-px film's sums) */
        double c = var > 1e-8 * N ? num / sqrt (tt * var) : 0;
        mt->ncc[k] = c;
        if (c > bv)
          {
            bv = c;
            best = k;
          }
      }
  int bu = best % m, bvv = best / m;
  double ox = bu > 0 && bu < m - 1 ? parabola (mt->ncc[best - 1], bv, mt->ncc[best + 1]) : 0;
  double oy = bvv > 0 && bvv < m - 1 ? parabola (mt->ncc[best - m], bv, mt->ncc[best + m]) : 0;
  out->gx = x0 + (B - 1) / 2.0;
  out->gy = y0 + (B - 1) / 2.0;
  out->sx = cx + bu - S + ox;
  out->sy = cy + bvv - S + oy;
  out->peak = bv;
  out->keep = TRUE;
  return TRUE;
}

/* How far (px each way) a block found at half resolution is searched
 * again at full resolution: its half-resolution shift is within half a
 * half-resolution px, one px here, of the best; one more for the
 * parabola's neighbours. */
#define FINE_PX 2

/* @a (n x n) averaged over 2 x 2 cells, (n / 2)^2; a NAN in a cell makes
 * the cell NAN (MOVING without data there). */
static float *
halve (const float *a, int n)
{
  int h = n / 2;
  float *o = g_new (float, (gsize) h * h);
  for (int y = 0; y < h; y++)
    {
      const float *r0 = a + (gsize) 2 * y * n, *r1 = r0 + n;
      for (int x = 0; x < h; x++)
        o[(gsize) y * h + x] = 0.25f * ((r0[2 * x] + r0[2 * x + 1]) + (r1[2 * x] + r1[2 * x + 1]));
    }
  return o;
}

/* The residual shift of every block of size @B (moving up to @S px)
 * inside the thorax window. */
static GArray *
match_blocks (const Level *L, int B, int S)
{
  int n = L->f->n, step = B / 2;
  GArray *blocks = g_array_new (FALSE, FALSE, sizeof (Block));
  float *wm = cxr__falloc ((gsize) n * n);
  level_warp (L, L->gm, wm);
  gsize nt = (gsize) (n + 1) * (n + 1);
  g_autofree double *c1 = g_new (double, nt), *c2 = g_new (double, nt);
  g_autofree double *cw = g_new (double, nt);
  summed_areas (wm, n, c1, c2);
  summed_areas (L->f->weight, n, cw, NULL);
  /* found first at half resolution (half the block, half the search,
   * both images 2 x 2 averaged), then within FINE_PX of that at full
   * resolution; a level too small to halve is searched whole */
  gboolean halved = B % 8 == 0 && S % 2 == 0 && S > FINE_PX;
  int h = n / 2;
  g_autofree float *gf2 = halved ? halve (L->gf, n) : NULL, *wm2 = halved ? halve (wm, n) : NULL;
  g_autofree double *c1h = NULL, *c2h = NULL;
  Matcher mt, mh;
  if (halved)
    {
      c1h = g_new (double, (gsize) (h + 1) * (h + 1));
      c2h = g_new (double, (gsize) (h + 1) * (h + 1));
      summed_areas (wm2, h, c1h, c2h);
      matcher_init (&mh, B / 2, S / 2);
      mh.c1 = c1h;
      mh.c2 = c2h;
    }
  matcher_init (&mt, B, halved ? FINE_PX : S);
  mt.c1 = c1;
  mt.c2 = c2;
  int nx = MAX (0, (n - B - 2 * S) / step + 1), ny = nx;
  for (int y0 = S, iy = 0; y0 + B + S <= n; y0 += step, iy++)
    for (int x0 = S, ix = 0; x0 + B + S <= n; x0 += step, ix++)
      {
        double sw = box_sum (cw, n + 1, x0, y0, B);
        Block bl;
        int cx = 0, cy = 0;
        if (sw < 0.5 * B * B)
          continue;
        if (halved)
          {
            /* the centre kept inside the level's search, so the shift
             * found stays within S px as without halving */
            if (!match_one (&mh, gf2, wm2, h, x0 / 2, y0 / 2, 0, 0, &bl))
              continue;
            cx = CLAMP ((int) lround (2 * bl.sx), FINE_PX - S, S - FINE_PX);
            cy = CLAMP ((int) lround (2 * bl.sy), FINE_PX - S, S - FINE_PX);
          }
        if (!match_one (&mt, L->gf, wm, n, x0, y0, cx, cy, &bl) || bl.peak < MIN_NCC)
          continue;
        bl.ix = ix;
        bl.iy = iy;
        g_array_append_val (blocks, bl);
      }
  matcher_clear (&mt);
  if (halved)
    matcher_clear (&mh);
  fftwf_free (wm);

  /* outliers: against the median of the neighbours within 1.5 steps, the
   * (up to 8) blocks next to it on the level's grid, found through a map
   * of the grid */
  guint nb = blocks->len;
  g_autofree int *at = g_new (int, MAX (1, nx * ny));
  for (int i = 0; i < nx * ny; i++)
    at[i] = -1;
  for (guint k = 0; k < nb; k++)
    {
      const Block *bk = &g_array_index (blocks, Block, k);
      at[bk->iy * nx + bk->ix] = (int) k;
    }
  double vx[8], vy[8];
  for (guint k = 0; k < nb; k++)
    {
      Block *bk = &g_array_index (blocks, Block, k);
      int m = 0;
      for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
          {
            int jx = bk->ix + dx, jy = bk->iy + dy;
            if ((dx == 0 && dy == 0) || jx < 0 || jy < 0 || jx >= nx || jy >= ny
                || at[jy * nx + jx] < 0)
              continue;
            const Block *bl = &g_array_index (blocks, Block, at[jy * nx + jx]);
            vx[m] = bl->sx;
            vy[m] = bl->sy;
            m++;
          }
      if (m < 2)
        {
          /* an isolated block: nothing to check it against */
          bk->keep = FALSE;
          continue;
        }
      qsort (vx, m, sizeof (double), cxr__cmp_double);
      qsort (vy, m, sizeof (double), cxr__cmp_double);
      double medx = m % 2 ? vx[m / 2] : 0.5 * (vx[m / 2 - 1] + vx[m / 2]);
      double medy = m % 2 ? vy[m / 2] : 0.5 * (vy[m / 2 - 1] + vy[m / 2]);
      bk->keep = hypot (bk->sx - medx, bk->sy - medy) <= OUTLIER_PX;
    }
  return blocks;
}

/* Grid points where the warp of the fixed grid folds: det(I + grad d) <= 0
 * on every fourth point inside the film. */
static int
count_folds (const Level *L)
{
  int n = L->f->n, folds = 0;
  for (int y = 1; y < n - 1; y += 4)
    for (int x = 1; x < n - 1; x += 4)
      {
        gsize i = (gsize) y * n + x;
        if (L->f->valid[i] < 0.5f)
          continue;
        double dxx = 0.5 * (L->dx[i + 1] - L->dx[i - 1]), dxy = 0.5 * (L->dx[i + n] - L->dx[i - n]);
        double dyx = 0.5 * (L->dy[i + 1] - L->dy[i - 1]), dyy = 0.5 * (L->dy[i + n] - L->dy[i - n]);
        folds += (1 + dxx) * (1 + dyy) - dxy * dyx <= 0;
      }
  return folds;
}

/* One fit from the blocks of @L: targets, the field, folds removed. */
static gboolean
fit_level (Level *L, GArray *blocks, CxrDeformField *field, double lambda, int *folds)
{
  g_autofree CxrFieldTarget *t = g_new (CxrFieldTarget, MAX (blocks->len, 1));
  int nt = 0;
  int n = L->f->n;
  for (guint k = 0; k < blocks->len; k++)
    {
      const Block *b = &g_array_index (blocks, Block, k);
      if (!b->keep)
        continue;
      int ix = CLAMP ((int) lround (b->gx), 0, n - 1), iy = CLAMP ((int) lround (b->gy), 0, n - 1);
      gsize i = (gsize) iy * n + ix;
      t[nt].x = grid_to_film_x (L, b->gx);
      t[nt].y = grid_to_film_y (L, b->gy);
      t[nt].tx = (L->dx[i] + b->sx) / L->kx;
      t[nt].ty = (L->dy[i] + b->sy) / L->ky;
      t[nt].w = b->peak;
      nt++;
    }
  if (nt < 8)
    return FALSE;
  for (int tries = 0; tries < 4; tries++, lambda *= 4)
    {
      if (!cxr__fit_field (field, L->fw, L->fh, t, nt, lambda))
        return FALSE;
      level_field (L, field);
      *folds = count_folds (L);
      if (*folds == 0)
        return TRUE;
    }
  return TRUE;
}

/* --- evidence ------------------------------------------------------------------ */

/* NCC of the fixed film's (smoothed) intensities and the warped moving
 * one's over FIXED's lung fields (@flung > 0.5, or weighted by its thorax
 * window when either film has none), and the overlap (Dice) of FIXED's
 * lung fields with MOVING's warped (NAN without both; not asked when
 * @dc is %NULL, which spares the samples outside the region); on every
 * second pixel (staggered), mapping each sample, without warping whole
 * images. */
static void
evidence (const Level *L, const float *flung, const float *mlung, double *ncc, double *dc)
{
  int n = L->f->n;
  gboolean lungs = flung && mlung, dice = lungs && dc;
  double sw = 0, sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0, both = 0, sum = 0;
  for (int y = 0; y < n; y += 2)
    for (int x = (y / 2) % 2; x < n; x += 2)
      {
        gsize i = (gsize) y * n + x;
        double w = lungs ? (flung[i] > 0.5f) : L->f->weight[i];
        gboolean fl = lungs && flung[i] > 0.5f;
        if (!(w > 0) && !dice)
          continue;
        double mx, my;
        gboolean in;
        level_map (L, x, y, &mx, &my);
        if (dice)
          {
            float ml = cxr__bilinear (mlung, n, n, mx, my, &in);
            gboolean m = in && ml > 0.5f;
            both += fl && m;
            sum += fl + m;
          }
        if (!(w > 0))
          continue;
        float v = cxr__bilinear (L->mi, n, n, mx, my, &in), a = L->fi[i];
        /* black (collimation, a cropped border) or saturated (markers) in
         * either film is no evidence of alignment, as in the maps */
        if (!in || isnan (v) || isnan (a) || a < 0.02f || v < 0.02f || a > 0.97f || v > 0.97f)
          continue;
        sw += w;
        sa += w * a;
        sb += w * v;
        saa += w * a * a;
        sbb += w * v * v;
        sab += w * a * v;
      }
  double vaa = saa - sa * sa / sw, vbb = sbb - sb * sb / sw, vab = sab - sa * sb / sw;
  *ncc = sw >= 1 && vaa > 0 && vbb > 0 ? vab / sqrt (vaa * vbb) : 0;
  if (dc)
    *dc = lungs && sum > 0 ? 2 * both / sum : NAN;
}

/* The intensities' own pull, after the blocks: a few steps of an
 * optical-flow (demons) update of the field over FIXED's lung fields (its
 * thorax window without them). Every second pixel there is a target,
 * weighted by FIXED's gradient |g_F|^2 / (|g_F|^2 + g0^2) (a flat place
 * says nothing of where it moved), the weights summing to @total_w; the
 * places and weights stay, so the fit's equations are factored once. Each
 * step warps MOVING's smoothed intensities with the field, matches their
 * mean and spread to FIXED's there, and asks each target to move by
 * -r g / (|g|^2 + r^2) (r the difference, g the two films' mean gradient;
 * at most 1 grid px); pins hold the lung fields' outline where the blocks
 * put it (@pin_w their total weight; none without lung fields). A step
 * that folds the warp or does not raise the NCC inside the region ends the
 * refinement, its field undone. */
static void
refine_intensity (Level *L, const float *flung, double lambda, int steps, double total_w,
                  double pin_w, CxrDeformField *field)
{
  int n = L->f->n;
  gsize nn = (gsize) n * n;
  /* the intensity targets on every second pixel, then the pins */
  g_autofree CxrFieldTarget *t = g_new (CxrFieldTarget, nn / 2 + 2);
  g_autofree gsize *at = g_new (gsize, nn / 4 + 1);
  /* the region's spread sets the gradient scale */
  double sw = 0, sf = 0, sff = 0;
  for (int y = 1; y < n - 1; y += 2)
    for (int x = 1; x < n - 1; x += 2)
      {
        gsize i = (gsize) y * n + x;
        double w = flung ? flung[i] > 0.5f : L->f->weight[i];
        if (w > 0 && !isnan (L->fi[i]))
          {
            sw += w;
            sf += w * L->fi[i];
            sff += w * L->fi[i] * L->fi[i];
          }
      }
  if (sw < 64)
    return;
  double g0 = sqrt (MAX (sff / sw - sf * sf / (sw * sw), 1e-12)) / 16;
  int nt = 0;
  double wsum = 0;
  for (int y = 1; y < n - 1; y += 2)
    for (int x = 1; x < n - 1; x += 2)
      {
        gsize i = (gsize) y * n + x;
        double w = flung ? flung[i] > 0.5f : L->f->weight[i];
        const float *f = L->fi;
        if (!(w > 0) || isnan (f[i - 1]) || isnan (f[i + 1]) || isnan (f[i - n])
            || isnan (f[i + n]))
          continue;
        double gx = 0.5 * (f[i + 1] - f[i - 1]), gy = 0.5 * (f[i + n] - f[i - n]);
        double g2 = gx * gx + gy * gy;
        t[nt].x = grid_to_film_x (L, x);
        t[nt].y = grid_to_film_y (L, y);
        t[nt].w = w * g2 / (g2 + g0 * g0);
        wsum += t[nt].w;
        at[nt++] = i;
      }
  if (nt < 64 || !(wsum > 0))
    return;
  for (int k = 0; k < nt; k++)
    t[k].w *= total_w / wsum;
  /* the pins: on both sides of FIXED's lung outline (every second pixel
   * whose neighbours 2 px away are not all on its side), the blocks'
   * displacement, kept through the steps. The blocks matched the outlines
   * themselves (the lungs' guide); the intensities inside pull towards the
   * ribs, which move with a breath unlike the lungs' outline, and without
   * the pins drew the outlines apart (Dice 0.952 -> 0.937 at 10 steps). */
  int np = 0;
  if (flung && pin_w > 0)
    {
      for (int y = 2; y < n - 2; y += 2)
        for (int x = 2; x < n - 2; x += 2)
          {
            gsize i = (gsize) y * n + x;
            gboolean in = flung[i] > 0.5f;
            if (in == (flung[i - 2] > 0.5f) && in == (flung[i + 2] > 0.5f)
                && in == (flung[i - 2 * n] > 0.5f) && in == (flung[i + 2 * n] > 0.5f))
              continue;
            CxrFieldTarget *p = &t[nt + np++];
            p->x = grid_to_film_x (L, x);
            p->y = grid_to_film_y (L, y);
            p->tx = L->dx[i] / L->kx;
            p->ty = L->dy[i] / L->ky;
          }
      for (int k = 0; k < np; k++)
        t[nt + k].w = pin_w / np;
    }
  g_autoptr (CxrFieldFit) ff
      = cxr__field_fit_new (field->nx, field->ny, L->fw, L->fh, t, nt + np, lambda);
  if (ff == NULL)
    return;
  float *wm = cxr__falloc (nn);
  /* the rows the targets and their neighbours read */
  int ylo = (int) (at[0] / n) - 1, yhi = (int) (at[nt - 1] / n) + 1;
  double ncc0;
  evidence (L, flung, flung, &ncc0, NULL);
  for (int s = 0; s < steps; s++)
    {
      level_warp_rows (L, L->mi, wm, ylo, yhi);
      double mw = 0, mf = 0, vw = 0, vf = 0, cw = 0;
      for (int k = 0; k < nt; k++)
        {
          float a = L->fi[at[k]], b = wm[at[k]];
          if (isnan (b) || a < 0.02f || a > 0.97f || b < 0.02f || b > 0.97f)
            continue;
          mf += a;
          mw += b;
          vf += (double) a * a;
          vw += (double) b * b;
          cw += 1;
        }
      if (cw < 64)
        break;
      mf /= cw;
      mw /= cw;
      double gain = sqrt (MAX (vf / cw - mf * mf, 1e-12) / MAX (vw / cw - mw * mw, 1e-12));
      for (int k = 0; k < nt; k++)
        {
          gsize i = at[k];
          double ux = 0, uy = 0;
          if (!isnan (wm[i]) && !isnan (wm[i - 1]) && !isnan (wm[i + 1]) && !isnan (wm[i - n])
              && !isnan (wm[i + n]))
            {
              double r = (wm[i] - mw) * gain + mf - L->fi[i];
              double gx = 0.25 * ((L->fi[i + 1] - L->fi[i - 1]) + gain * (wm[i + 1] - wm[i - 1]));
              double gy = 0.25 * ((L->fi[i + n] - L->fi[i - n]) + gain * (wm[i + n] - wm[i - n]));
              double den = gx * gx + gy * gy + r * r;
              if (den > 0)
                {
                  ux = -r * gx / den;
                  uy = -r * gy / den;
                  double um = hypot (ux, uy);
                  if (um > 1)
                    {
                      ux /= um;
                      uy /= um;
                    }
                }
            }
          t[k].tx = (L->dx[i] + ux) / L->kx;
          t[k].ty = (L->dy[i] + uy) / L->ky;
        }
      CxrDeformField before = *field;
      cxr__field_fit_solve (ff, t, field);
      level_field (L, field);
      double ncc;
      evidence (L, flung, flung, &ncc, NULL);
      if (count_folds (L) > 0 || !(ncc > ncc0))
        {
          *field = before;
          level_field (L, field);
          break;
        }
      ncc0 = ncc;
    }
  fftwf_free (wm);
}

/* A field fitted with the lung masks (@guide: both films' lung masks,
 * smoothed; or NULL) weighted @weight in the matching:
 * @L's dx, dy end as the field on its grid; its lungs' NCC and Dice in
 * @ncc, @dc, and the Dice of the blocks' field before the intensities'
 * pull in @dc_blocks (@dc without it); FALSE when no level had blocks
 * enough to fit. */
static gboolean
deform_fit (Level *L, const float *flung, const float *mlung, const float *const guide[2],
            double weight, const CxrRegisterOptions *opt, CxrDeformField *field, double *ncc,
            double *dc, double *dc_blocks, int *folds)
{
  const Grid *ft = L->f;
  int n = ft->n;
  gsize nn = (gsize) n * n;
  /* lung-guided: with both films' lung fields, their (smoothed) masks are
   * added to the images the blocks are matched on, so that the fields'
   * outlines (the diaphragm's domes, the heart's border, the costophrenic
   * angles) pull as hard as the ribs do */
  float *gf = NULL, *gm = NULL;
  L->gf = L->fi;
  L->gm = L->mi;
  if (guide && weight > 0)
    {
      gf = cxr__falloc (nn);
      gm = cxr__falloc (nn);
      for (gsize i = 0; i < nn; i++)
        {
          gf[i] = L->fi[i] + (float) weight * guide[0][i];
          gm[i] = L->mi[i] + (float) weight * guide[1][i]; /* NAN stays NAN */
        }
      L->gf = gf;
      L->gm = gm;
    }
  memset (L->dx, 0, sizeof (float) * nn);
  memset (L->dy, 0, sizeof (float) * nn);
  memset (field, 0, sizeof *field);
  field->nx = field->ny = CLAMP (opt->deform_points, 4, CXR_DEFORM_MAX);
  double lambda = opt->deform_lambda > 0 ? opt->deform_lambda : 0.05;
  gboolean fitted = FALSE;
  for (guint l = 0; l < G_N_ELEMENTS (levels); l++)
    {
      if (levels[l].block < opt->deform_min_block)
        break;
      gint64 t0 = g_get_monotonic_time ();
      GArray *blocks = match_blocks (L, levels[l].block, levels[l].search);
      gint64 t1 = g_get_monotonic_time ();
      fitted |= fit_level (L, blocks, field, lambda, folds);
      g_debug ("deform: level %u, %u blocks: matched in %.1f ms, fitted in %.1f ms", l, blocks->len,
               (t1 - t0) / 1e3, (g_get_monotonic_time () - t1) / 1e3);
      g_array_unref (blocks);
    }
  if (fitted)
    {
      level_field (L, field);
      *folds = count_folds (L);
      gboolean refine = *folds == 0 && opt->deform_refine_steps > 0;
      *dc_blocks = NAN;
      if (refine && flung && mlung)
        {
          double nb;
          evidence (L, flung, mlung, &nb, dc_blocks);
        }
      if (refine)
        refine_intensity (L, flung, REFINE_LAMBDA, opt->deform_refine_steps, REFINE_TOTAL_W,
                          REFINE_PIN_W, field);
      evidence (L, flung, mlung, ncc, dc);
      if (isnan (*dc_blocks))
        *dc_blocks = *dc;
    }
  fftwf_free (gf);
  fftwf_free (gm);
  L->gf = L->gm = NULL;
  return fitted;
}

/* A result of the deformable stage: the global similarity alone
 * (@deformable FALSE) or a field, and the evidence for it. */
typedef struct {
  gboolean deformable;
  CxrDeformField field;
  double weight, ncc, dice;
} Candidate;

/* Where the first field leaves the lungs overlapping by less than ok_dice,
 * another is fitted with the outlines pulling harder. On AP films the ribs
 * and the lung outlines do not move as one (posture, depth of breath), so
 * the weight that lines up one can misplace the other; which compromise
 * fits a pair best differs. (A third, on the intensities alone, made one
 * more of the 133 real pairs ok, at twice the cost.) */
static const double more_weights[] = { 0.5 };
/* among the fields, one may give up this much of the global stage's NCC
 * for a better overlap, but not be less alike than the films unmoved
 * (the status rule fails such a pair: a field it would fail is not
 * chosen over one it would not) */
#define CHOICE_NCC_SLACK 0.05

/**
 * cxr__deform_choose:
 * Of @n candidates (the global stage, @deformable FALSE, and fields), the
 * index of the one with the highest @ncc + @dice whose NCC is at most
 * CHOICE_NCC_SLACK under @ncc_global and, for a field, above @ncc_before;
 * -1 when none is.
 */
int
cxr__deform_choose (const double *ncc, const double *dice, const gboolean *deformable, int n,
                    double ncc_global, double ncc_before)
{
  int best = -1;
  double bs = -INFINITY;
  for (int k = 0; k < n; k++)
    if (ncc[k] >= ncc_global - CHOICE_NCC_SLACK && (!deformable[k] || ncc[k] > ncc_before)
        && ncc[k] + dice[k] > bs)
      {
        bs = ncc[k] + dice[k];
        best = k;
      }
  return best;
}

/**
 * cxr__deform:
 * The deformable stage after the global similarity @S (top grids, FIXED
 * -> MOVING) of films prepared as @F and @M (@fw x @fh: FIXED's size);
 * fills @out's ncc_before, ncc_global, ncc_after, ncc_region, lung_dice_*,
 * and, when a field improves on the global stage, deformable, field,
 * rms/max_displacement_px and folds.
 *
 * The first field (lung weight deform_lung_weight) is kept when the lungs
 * correlate better than after the global stage, or overlap clearly better
 * (by 0.01) at almost the same correlation (within 0.01): a lung outline
 * that moved with breathing carries little of the intensity NCC. When the
 * overlap is still under ok_dice, fields with the lung weights of
 * more_weights are fitted too, and of the global stage and every field
 * without folds whose NCC is at most CHOICE_NCC_SLACK under the global
 * stage's and above the films' unmoved, the one with the highest NCC +
 * Dice is kept (the two measure
 * different things, the ribs and vessels inside the lungs and the lungs'
 * outline, on comparable scales; neither alone says the lungs line up).
 */
void
cxr__deform (const Pyr *F, const Pyr *M, int fw, int fh, const Sim *S,
             const CxrRegisterOptions *opt, CxrRegistration *out)
{
  const Grid *ft = cxr__pyr_top (F), *mt = cxr__pyr_top (M);
  int n = ft->n;
  gsize nn = (gsize) n * n;
  gboolean lungs = F->lung && M->lung;
  const float *flung = lungs ? F->lung : NULL, *mlung = lungs ? M->lung : NULL;
  out->ncc_region = lungs ? "lungs" : "thorax";
  memset (&out->field, 0, sizeof out->field);
  out->deformable = FALSE;
  out->rms_displacement_px = out->max_displacement_px = 0;
  out->jacobian_min = out->jacobian_max = 1;
  out->folds = 0;

  /* both films' intensities, smoothed; MOVING's NAN where it has no data */
  float *fi = cxr__falloc (nn), *mi = cxr__falloc (nn), *tmp = cxr__falloc (nn);
  memcpy (fi, ft->img, sizeof (float) * nn);
  memcpy (mi, mt->img, sizeof (float) * nn);
  cxr__blur (fi, n, n, 1.0, tmp);
  cxr__blur (mi, n, n, 1.0, tmp);
  for (gsize i = 0; i < nn; i++)
    if (mt->valid[i] < 0.99f)
      mi[i] = NAN;
  fftwf_free (tmp);
  Level top = { ft, mt, *S,   fw,  fh, ft->k, ft->k * F->aspect, cxr__falloc (nn), cxr__falloc (nn),
                fi, mi, NULL, NULL };
  Sim ident = { 1, 0, 0, 0 };
  Level before = top;
  before.S = ident;
  evidence (&before, flung, mlung, &out->ncc_before, &out->lung_dice_before);
  evidence (&top, flung, mlung, &out->ncc_global, &out->lung_dice_after);
  out->ncc_after = out->ncc_global;
  if (opt->no_deform)
    goto done;

  /* the lungs' guide: both films' lung masks, smoothed, made once for
   * every field fitted */
  float *lguide[2] = { NULL, NULL };
  const float *const *guide = NULL;
  if (lungs)
    {
      float *t2 = cxr__falloc (nn);
      for (int k = 0; k < 2; k++)
        {
          lguide[k] = cxr__falloc (nn);
          memcpy (lguide[k], k ? mlung : flung, sizeof (float) * nn);
          cxr__blur (lguide[k], n, n, 2.0, t2);
        }
      fftwf_free (t2);
      guide = (const float *const *) lguide;
    }
  const Candidate global = { FALSE, { 0 }, 0, out->ncc_global, out->lung_dice_after };
  Candidate best = global, c = { TRUE };
  int folds = 0;
  c.weight = lungs ? opt->deform_lung_weight : 0;
  double blocks_dice = NAN;
  gboolean fitted = deform_fit (&top, flung, mlung, guide, c.weight, opt, &c.field, &c.ncc, &c.dice,
                                &blocks_dice, &folds);
  if (fitted)
    {
      g_debug ("deform: weight %.2f: ncc %.3f -> %.3f, dice %.3f -> %.3f, folds %d", c.weight,
               out->ncc_global, c.ncc, out->lung_dice_after, c.dice, folds);
      if (folds == 0
          && (c.ncc > best.ncc
              || (!isnan (c.dice) && c.dice > best.dice + 0.01 && c.ncc > best.ncc - 0.01)))
        best = c;
      out->folds = folds;
    }
  /* the intensities' pull may cost the outlines the blocks lined up:
   * then the other fields are tried as for a short overlap */
  gboolean refine_lost = fitted && folds == 0 && c.dice < blocks_dice - REFINE_DICE_LOSS;
  if (lungs && (best.dice < opt->ok_dice || refine_lost))
    {
      Candidate cands[2 + G_N_ELEMENTS (more_weights)];
      int nc = 0;
      cands[nc++] = global;
      if (fitted && folds == 0)
        cands[nc++] = c;
      for (guint k = 0; k < G_N_ELEMENTS (more_weights); k++)
        {
          Candidate m = { TRUE };
          int f = 0;
          double bd;
          m.weight = more_weights[k];
          if (m.weight == c.weight
              || !deform_fit (&top, flung, mlung, guide, m.weight, opt, &m.field, &m.ncc, &m.dice,
                              &bd, &f))
            continue;
          g_debug ("deform: weight %.2f: ncc %.3f -> %.3f, dice %.3f -> %.3f, folds %d", m.weight,
                   out->ncc_global, m.ncc, out->lung_dice_after, m.dice, f);
          if (f == 0)
            cands[nc++] = m;
        }
      double cn[G_N_ELEMENTS (cands)], cd[G_N_ELEMENTS (cands)];
      gboolean cf[G_N_ELEMENTS (cands)];
      for (int k = 0; k < nc; k++)
        {
          cn[k] = cands[k].ncc;
          cd[k] = cands[k].dice;
          cf[k] = cands[k].deformable;
        }
      int k = cxr__deform_choose (cn, cd, cf, nc, out->ncc_global, out->ncc_before);
      best = k >= 0 ? cands[k] : global;
    }
  if (best.deformable)
    {
      out->deformable = TRUE;
      out->field = best.field;
      out->ncc_after = best.ncc;
      out->lung_dice_after = best.dice;
      out->folds = 0;
      /* displacement inside FIXED's lungs (or its window), FIXED px */
      level_field (&top, &best.field);
      double s2 = 0, mx = 0, cnt = 0;
      for (gsize i = 0; i < nn; i++)
        {
          gboolean in = flung ? flung[i] > 0.5f : ft->weight[i] > 0.5f;
          if (!in)
            continue;
          double d = hypot (top.dx[i] / top.kx, top.dy[i] / top.ky);
          s2 += d * d;
          mx = MAX (mx, d);
          cnt++;
        }
      out->rms_displacement_px = cnt > 0 ? sqrt (s2 / cnt) : 0;
      out->max_displacement_px = mx;
      jacobian_range (&top, flung, &out->jacobian_min, &out->jacobian_max);
    }
  fftwf_free (lguide[0]);
  fftwf_free (lguide[1]);
done:
  fftwf_free (top.dx);
  fftwf_free (top.dy);
  fftwf_free (fi);
  fftwf_free (mi);
}
