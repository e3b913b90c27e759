/* SPDX-License-Identifier: MIT
 *
 * Registration of two chest films by a similarity transform.
 *
 * 1. Both films are area-resampled onto centred square grids: coarse
 *    (default 256 px), mid (half that) and search (a quarter), each at
 *    least 64 px, and optionally a fine grid above coarse; with a validity
 *    map for padding.
 * 2. Structure, not exposure: the top grid is locally contrast-normalised
 *    ((I - mean) / std over a Gaussian of 1/32 of the grid), clamped to
 *    +-3, and weighted by a thorax window: a Tukey taper that removes the
 *    borders and collimation edges, zero on padding, and zero around
 *    saturated pixels (burned-in letters and markers). The coarser grids
 *    take the block means of the finer one's structure image and window.
 * 3. Rotation and scale (Fourier-Mellin; Reddy & Chatterji, IEEE TIP 1996):
 *    magnitude spectra of the mid grids, high-passed and log-compressed,
 *    are resampled to log-polar coordinates, where rotation and scale
 *    become a shift that phase correlation finds, once per pair; the
 *    search is limited to the allowed angle and scale ranges. Real
 *    follow-up films defeat Fourier-Mellin alone, so its estimate is one
 *    hypothesis among a grid over the allowed ranges (6 degree, 10 %
 *    steps), and with rotation limits beyond 90 degrees each hypothesis
 *    also comes turned by 180 (the ambiguity of magnitude spectra).
 * 4. Translation: phase correlation on the search grid after undoing each
 *    hypothesis's rotation and scale, with a parabolic sub-pixel peak and
 *    its peak-to-sidelobe ratio (PSR); the four highest peaks go on.
 * 5. Refinement of all four parameters by robust Gauss-Newton (inverse
 *    compositional Lucas-Kanade, Baker & Matthews IJCV 2004, with Huber
 *    weights re-estimated each iteration) of the four on the search grid;
 *    the best-correlating one goes on through the mid and coarse (and
 *    fine) grids. Both directions are estimated, each from its own
 *    hypotheses; the result is the midpoint of the forward estimate and
 *    the inverse of the backward one, and their disagreement lowers the
 *    confidence.
 *    This replaces the upsampled-DFT peak refinement of Guizar-Sicairos et
 *    al. (Opt. Lett. 2008): it reaches a few hundredths of a pixel for
 *    rotation, scale and translation jointly, where a translation-only
 *    peak refinement cannot correct the rotation and scale errors left by
 *    the log-polar grid.
 * 6. Confidence = weighted normalised cross-correlation of the structure
 *    images after alignment on the top grid, times exp(-disagreement / 10
 *    px); below min_confidence the result is 'failed',
 *    below ok_confidence 'low_confidence'. Estimates outside the search
 *    limits or that diverge are 'failed' whatever the correlation.
 *
 * FFTW plans are made once per size under one mutex and executed with the
 * thread-safe new-array interface, so any number of threads may register
 * pairs at once.
 */
#include <fftw3.h>
/* after fftw3.h: FFTW keeps its own float[2] complex type */
#include <complex.h>
#include <math.h>
#include <string.h>

#include "cxr/error.h"
#include "cxr/register.h"
#include "image-private.h"

#define LP_ANGLES 180   /* log-polar: angle bins over 180 degrees */
#define LP_RADII 64     /* log-polar: radius bins */
/* Forward and inverted backward results closer than this (film px) at five
 * points are not cross-seeded: the result, their midpoint, is then within
 * AGREE_PX / 2 of either. Cross-seeding is for directions that found
 * different optima (tens of px apart on real films), and costs a third of
 * a registration. */
#define AGREE_PX 0.5

const char *
cxr_register_status_name (CxrRegisterStatus s)
{
  switch (s)
    {
    case CXR_REGISTER_OK: return "ok";
    case CXR_REGISTER_LOW_CONFIDENCE: return "low_confidence";
    default: return "failed";
    }
}

void
cxr_register_options_init (CxrRegisterOptions *o)
{
  memset (o, 0, sizeof *o);
  o->coarse_size = 256;
  o->fine_size = 0;
  o->max_angle_deg = 15;
  o->min_scale = 0.8;
  o->max_scale = 1.25;
  o->ok_confidence = 0.5;
  o->min_confidence = 0.3;
}

/* --- FFT plans ---------------------------------------------------------- */

typedef struct {
  fftwf_plan fwd;  /* r2c, n0 x n1 */
  fftwf_plan inv;  /* c2r */
} Plans;

static GMutex plan_lock;
static GHashTable *plan_cache;

static const Plans *
get_plans (int n0, int n1)
{
  g_mutex_lock (&plan_lock);
  if (plan_cache == NULL)
    plan_cache = g_hash_table_new (g_direct_hash, g_direct_equal);
  gpointer key = GINT_TO_POINTER (n0 * 65536 + n1);
  Plans *p = g_hash_table_lookup (plan_cache, key);
  if (p == NULL)
    {
      p = g_new0 (Plans, 1);
      float *in = fftwf_alloc_real ((size_t) n0 * n1);
      fftwf_complex *out = fftwf_alloc_complex ((size_t) n0 * (n1 / 2 + 1));
      p->fwd = fftwf_plan_dft_r2c_2d (n0, n1, in, out, FFTW_ESTIMATE);
      p->inv = fftwf_plan_dft_c2r_2d (n0, n1, out, in, FFTW_ESTIMATE);
      fftwf_free (in);
      fftwf_free (out);
      g_hash_table_insert (plan_cache, key, p);
    }
  g_mutex_unlock (&plan_lock);
  return p;
}

/* --- grids ---------------------------------------------------------------- */

/* A film resampled to an n x n grid: grid point u maps to film coordinate
 * x = (u - (n-1)/2) / k + cx. */
typedef struct {
  int n;
  double k;       /* grid px per film px */
  float *img;     /* n*n; the top grid only */
  float *valid;   /* n*n, 1 inside the film */
  float *lcn;     /* structure image */
  float *lcnv;    /* the same, NAN where the film has no data */
  float *weight;  /* thorax window */
  /* refine's template: every second pixel (staggered) that has weight,
   * inside a one-pixel border, with its position from the centre, value,
   * weight and gradient; fixed for the film, so made once (grid_template) */
  guint np;
  float *tpx, *tpy, *tfl, *tfw, *tgx, *tgy;
} Grid;

#define REFINE_STEP 2

static void
grid_clear (Grid *g)
{
  fftwf_free (g->img);
  fftwf_free (g->valid);
  fftwf_free (g->lcn);
  fftwf_free (g->lcnv);
  fftwf_free (g->weight);
  g_free (g->tpx);
  g_free (g->tpy);
  g_free (g->tfl);
  g_free (g->tfw);
  g_free (g->tgx);
  g_free (g->tgy);
  memset (g, 0, sizeof *g);
}

static float *
falloc (gsize n)
{
  float *p = fftwf_alloc_real (n);
  memset (p, 0, n * sizeof (float));
  return p;
}

static void grid_features (Grid *g);
static void grid_template (Grid *g);

/* Resampling of a w x h float image to the n x n grid, k grid px per
 * source px across and k * aspect down (aspect: a source pixel's height
 * over its width), so that the grid's pixels are square in the film's
 * physical frame. */
static void
grid_resample (Grid *g, const float *src, int w, int h, int n, double k, double aspect)
{
  g->n = n;
  g->k = k;
  g->img = falloc ((gsize) n * n);
  g->valid = falloc ((gsize) n * n);
  double c = (n - 1) / 2.0;
  cxr__resample (src, w, h, g->img, n, n, k, k * aspect, (w - 1) / 2.0, (h - 1) / 2.0, c, c,
                 g->valid);
}

/* A coarser grid of the same film: validity, structure image and window
 * area-averaged from the finer grid (each level halves, so this is the
 * block-mean path of cxr__resample). The structure image is a local
 * normalisation over a fixed fraction of the film, so averaging the finer
 * one gives what computing it again at the coarser grid would, up to its
 * clamp, at a third of the cost of four blurs. No image: only the top
 * grid's is read (grid_features). */
static void
grid_from_grid (Grid *dst, const Grid *src, int n)
{
  double r = n / (double) src->n;
  double c = (n - 1) / 2.0, sc = (src->n - 1) / 2.0;
  gsize nn = (gsize) n * n;
  float *in = falloc (nn);
  float **out[] = { &dst->valid, &dst->lcn, &dst->weight };
  const float *from[] = { src->valid, src->lcn, src->weight };
  dst->n = n;
  dst->k = src->k * r;
  for (int k = 0; k < 3; k++)
    {
      *out[k] = falloc (nn);
      cxr__resample (from[k], src->n, src->n, *out[k], n, n, r, r, sc, sc, c, c, in);
    }
  fftwf_free (in);
  dst->lcnv = falloc (nn);
  for (gsize i = 0; i < nn; i++)
    dst->lcnv[i] = dst->valid[i] >= 0.99f ? dst->lcn[i] : NAN;
  grid_template (dst);
}

static float
tukey (double t)
{
  /* t in [0, 1]; flat in the middle half, cosine tapers outside */
  const double a = 0.5;
  if (t < a / 2)
    return (float) (0.5 * (1 - cos (2 * G_PI * t / a)));
  if (t > 1 - a / 2)
    return (float) (0.5 * (1 - cos (2 * G_PI * (1 - t) / a)));
  return 1.f;
}

/* Structure image and thorax window of a grid. */
static void
grid_features (Grid *g)
{
  int n = g->n;
  gsize nn = (gsize) n * n;
  double sl = n / 32.0;
  float *tmp = falloc (nn), *m = falloc (nn), *mv = falloc (nn), *v = falloc (nn);
  g->lcn = falloc (nn);
  g->lcnv = falloc (nn);
  g->weight = falloc (nn);

  /* Normalised convolution, so padding does not darken the film's edge
   * (a film that fills the grid has mv = 1 everywhere: no blur needed). */
  gboolean full = TRUE;
  for (gsize i = 0; i < nn; i++)
    {
      m[i] = g->img[i] * g->valid[i];
      mv[i] = g->valid[i];
      full &= g->valid[i] == 1.f;
    }
  cxr__blur (m, n, n, sl, tmp);
  if (!full)
    cxr__blur (mv, n, n, sl, tmp);
  for (gsize i = 0; i < nn; i++)
    {
      m[i] = mv[i] > 1e-3f ? m[i] / mv[i] : 0.f;
      float d = (g->img[i] - m[i]) * g->valid[i];
      v[i] = d * d;
      g->lcn[i] = d;
    }
  cxr__blur (v, n, n, sl, tmp);
  /* saturated pixels (markers, letters), spread a little */
  float *sat = m;
  for (gsize i = 0; i < nn; i++)
    sat[i] = g->img[i] > 0.97f ? 1.f : 0.f;
  cxr__blur (sat, n, n, n / 256.0 * 2, tmp);
  float *tk = g_new (float, n);
  for (int x = 0; x < n; x++)
    tk[x] = tukey ((x + 0.5) / n);
  for (int y = 0; y < n; y++)
    for (int x = 0; x < n; x++)
      {
        gsize i = (gsize) y * n + x;
        float var = mv[i] > 1e-3f ? v[i] / mv[i] : 0.f;
        float z = g->lcn[i] / sqrtf (var + 1e-4f);
        g->lcn[i] = CLAMP (z, -3.f, 3.f);
        /* mv is the blurred validity: 1 well inside the film */
        float inside = CLAMP ((mv[i] - 0.95f) / 0.05f, 0.f, 1.f);
        float marker = sat[i] > 0.02f ? 0.f : 1.f;
        g->weight[i] = tk[x] * tk[y] * inside * marker;
        g->lcnv[i] = g->valid[i] >= 0.99f ? g->lcn[i] : NAN;
      }
  g_free (tk);
  grid_template (g);
  fftwf_free (tmp);
  fftwf_free (m);
  fftwf_free (mv);
  fftwf_free (v);
}

/* --- sampling --------------------------------------------------------------- */

static inline float
bilinear (const float *img, int w, int h, double x, double y, gboolean *inside)
{
  if (!(x >= 0 && y >= 0 && x <= w - 1 && y <= h - 1))
    {
      *inside = FALSE;
      return 0.f;
    }
  int x0 = MIN ((int) x, w - 2), y0 = MIN ((int) y, h - 2);
  float fx = (float) (x - x0), fy = (float) (y - y0);
  const float *p = img + (gsize) y0 * w + x0;
  *inside = TRUE;
  return (1 - fy) * ((1 - fx) * p[0] + fx * p[1]) + fy * ((1 - fx) * p[w] + fx * p[w + 1]);
}

/* A similarity on grid coordinates relative to the grid centre:
 * p' = [[a, -b], [b, a]] p + (tx, ty). */
typedef struct {
  double a, b, tx, ty;
} Sim;

/* The columns [*x0, *x1) of a row whose samples sx + a x, sy + b x lie
 * well inside an n x n grid (a pixel from every edge, so that rounding
 * cannot take them out): there bilinear_inside needs no bounds test. */
static void
row_inside (double sx, double sy, double a, double b, int n, int *x0, int *x1)
{
  double lo = 0, hi = n - 1;
  const double p[2] = { sx, sy }, d[2] = { a, b };
  for (int k = 0; k < 2; k++)
    {
      if (d[k] == 0)
        {
          if (!(p[k] >= 1 && p[k] <= n - 2))
            hi = -1;
          continue;
        }
      double t0 = (1 - p[k]) / d[k], t1 = (n - 2 - p[k]) / d[k];
      lo = MAX (lo, MIN (t0, t1));
      hi = MIN (hi, MAX (t0, t1));
    }
  /* empty, also when the map is not finite (then no bound holds) */
  if (!(lo <= hi))
    {
      *x0 = *x1 = 0;
      return;
    }
  *x0 = (int) ceil (lo);
  *x1 = (int) floor (hi) + 1;
}

static inline float
bilinear_inside (const float *img, int w, double x, double y)
{
  int x0 = (int) x, y0 = (int) y;
  float fx = (float) (x - x0), fy = (float) (y - y0);
  const float *p = img + (gsize) y0 * w + x0;
  return (1 - fy) * ((1 - fx) * p[0] + fx * p[1]) + fy * ((1 - fx) * p[w] + fx * p[w + 1]);
}

/* bilinear, without the bounds test where row_inside says the sample is
 * well inside */
static inline float
bilinear_row (const float *img, int n, double x, double y, gboolean inside, gboolean *in)
{
  if (inside)
    {
      *in = TRUE;
      return bilinear_inside (img, n, x, y);
    }
  return bilinear (img, n, n, x, y, in);
}

/* out(p) = src(S p) for p over an n x n grid (0 outside src). */
static void
warp_grid (const float *src, int n, const Sim *S, float *out)
{
  double c = (n - 1) / 2.0;
  for (int y = 0; y < n; y++)
    {
      double py = y - c;
      /* the map is affine: step it along the row */
      double sx = S->a * -c - S->b * py + S->tx + c;
      double sy = S->b * -c + S->a * py + S->ty + c;
      int xa, xb;
      row_inside (sx, sy, S->a, S->b, n, &xa, &xb);
      float *o = out + (gsize) y * n;
      gboolean in;
      for (int x = 0; x < n; x++)
        o[x] = bilinear_row (src, n, sx + S->a * x, sy + S->b * x, x >= xa && x < xb, &in);
    }
}

/* --- phase correlation -------------------------------------------------- */

typedef struct {
  double x, y;    /* shift: b(p) ~ a(p - t) */
  double peak;
  double psr;
} Peak;

/* Whitened cross-power spectrum of a and b (n0 x n1, row-major), inverse
 * transformed into corr (unnormalised). */
static void
cross_power (const float *a, const float *b, int n0, int n1, float *corr)
{
  const Plans *p = get_plans (n0, n1);
  gsize nc = (gsize) n0 * (n1 / 2 + 1);
  fftwf_complex *fa = fftwf_alloc_complex (nc), *fb = fftwf_alloc_complex (nc);
  float *in = fftwf_alloc_real ((gsize) n0 * n1);
  memcpy (in, a, sizeof (float) * n0 * n1);
  fftwf_execute_dft_r2c (p->fwd, in, fa);
  memcpy (in, b, sizeof (float) * n0 * n1);
  fftwf_execute_dft_r2c (p->fwd, in, fb);
  for (gsize i = 0; i < nc; i++)
    {
      /* conj(A) * B: a peak at t where b(p) = a(p - t) */
      float re = fa[i][0] * fb[i][0] + fa[i][1] * fb[i][1];
      float im = fa[i][0] * fb[i][1] - fa[i][1] * fb[i][0];
      float mag = sqrtf (re * re + im * im) + 1e-12f;
      fa[i][0] = re / mag;
      fa[i][1] = im / mag;
    }
  fftwf_execute_dft_c2r (p->inv, fa, corr);
  fftwf_free (fa);
  fftwf_free (fb);
  fftwf_free (in);
}

static double
parabolic (double l, double c, double r)
{
  double d = l - 2 * c + r;
  if (d >= 0)
    return 0;
  double off = 0.5 * (l - r) / d;
  return CLAMP (off, -0.5, 0.5);
}

/* Largest value of corr with the shift (wrapped) inside the limits.
 * Shifts are (row offset dy in [ylo, yhi], col offset dx in [xlo, xhi]).
 * The peak-to-sidelobe ratio is computed only if the peak exceeds
 * psr_above (a pass over the whole surface; 0 otherwise). */
static Peak
find_peak (const float *corr, int n0, int n1, double ylo, double yhi, double xlo, double xhi,
           double psr_above)
{
  Peak pk = { 0, 0, -INFINITY, 0 };
  int by = 0, bx = 0;
  for (int y = 0; y < n0; y++)
    {
      int dy = y <= n0 / 2 ? y : y - n0;
      if (dy < ylo || dy > yhi)
        continue;
      for (int x = 0; x < n1; x++)
        {
          int dx = x <= n1 / 2 ? x : x - n1;
          if (dx < xlo || dx > xhi)
            continue;
          float v = corr[(gsize) y * n1 + x];
          if (v > pk.peak)
            {
              pk.peak = v;
              by = y;
              bx = x;
            }
        }
    }
  if (!isfinite (pk.peak))
    return pk;
#define C(yy, xx) corr[(gsize) (((yy) + n0) % n0) * n1 + (((xx) + n1) % n1)]
  double oy = parabolic (C (by - 1, bx), C (by, bx), C (by + 1, bx));
  double ox = parabolic (C (by, bx - 1), C (by, bx), C (by, bx + 1));
#undef C
  pk.y = (by <= n0 / 2 ? by : by - n0) + oy;
  pk.x = (bx <= n1 / 2 ? bx : bx - n1) + ox;
  if (!(pk.peak > psr_above))
    return pk;
  /* PSR over the whole surface, outside an 11 x 11 neighbourhood. */
  double s = 0, s2 = 0, sin_ = 0, s2in = 0;
  gsize cnt = (gsize) n0 * n1, cin = 0;
  for (gsize i = 0; i < cnt; i++)
    {
      s += corr[i];
      s2 += (double) corr[i] * corr[i];
    }
  for (int dy = -5; dy <= 5; dy++)
    for (int dx = -5; dx <= 5; dx++)
      {
        double v = corr[(gsize) (((by + dy) % n0 + n0) % n0) * n1 + ((bx + dx) % n1 + n1) % n1];
        sin_ += v;
        s2in += v * v;
        cin++;
      }
  double mean = (s - sin_) / (cnt - cin);
  double sd = sqrt (MAX ((s2 - s2in) / (cnt - cin) - mean * mean, 1e-30));
  pk.psr = (pk.peak - mean) / sd;
  return pk;
}

/* --- rotation and scale (Fourier-Mellin) ---------------------------------- */

static void
log_polar_spectrum (const float *img, int n, float *lp, double rmin, double dlog)
{
  const Plans *p = get_plans (n, n);
  int nh = n / 2 + 1;
  fftwf_complex *f = fftwf_alloc_complex ((gsize) n * nh);
  float *in = fftwf_alloc_real ((gsize) n * n);
  memcpy (in, img, sizeof (float) * n * n);
  fftwf_execute_dft_r2c (p->fwd, in, f);
  /* |F|, high-passed (Reddy & Chatterji) and log-compressed, into a
   * centred (n+1) x (n+1) array over ky, kx in [-n/2, n/2], filled by
   * conjugate symmetry (|F(-k)| = |F(k)|), so that sampling it needs no
   * wrapping or mirroring. */
  int nc = n + 1, h = n / 2;
  float *mag = falloc ((gsize) nc * nc);
  double *cy = g_new (double, n), *lr = g_new (double, LP_RADII), *hann = g_new (double, LP_RADII);
  for (int y = 0; y < n; y++)
    cy[y] = cos (G_PI * (y <= h ? y : y - n) / (double) n);
  for (int y = 0; y < n; y++)
    {
      int ky = y <= h ? y : y - n;
      for (int x = 0; x < nh; x++)
        {
          double X = cy[x] * cy[y];
          double hp = (1 - X) * (2 - X);
          gsize i = (gsize) y * nh + x;
          float m = (float) (log1p (sqrt (f[i][0] * f[i][0] + f[i][1] * f[i][1])) * hp);
          mag[(gsize) (ky + h) * nc + (x + h)] = m;
          mag[(gsize) (h - ky) * nc + (h - x)] = m;
          if (ky == -h || ky == h) /* the Nyquist row is both +n/2 and -n/2 */
            {
              mag[(gsize) (h - ky) * nc + (x + h)] = m;
              mag[(gsize) (h + ky) * nc + (h - x)] = m;
            }
        }
    }
  for (int r = 0; r < LP_RADII; r++)
    {
      lr[r] = rmin * exp (r * dlog);
      /* Hann along log-radius: the axis is not periodic. */
      hann[r] = 0.5 * (1 - cos (2 * G_PI * (r + 0.5) / LP_RADII));
    }
  for (int a = 0; a < LP_ANGLES; a++)
    {
      double phi = -G_PI / 2 + G_PI * a / LP_ANGLES;
      double cs = cos (phi), sn = sin (phi);
      for (int r = 0; r < LP_RADII; r++)
        {
          double fx = lr[r] * cs + h, fy = lr[r] * sn + h;
          int x0 = (int) fx, y0 = (int) fy; /* fx, fy > 0: truncation is floor */
          double ax = fx - x0, ay = fy - y0;
          const float *q = mag + (gsize) y0 * nc + x0;
          double v = (1 - ay) * ((1 - ax) * q[0] + ax * q[1]) + ay * ((1 - ax) * q[nc] + ax * q[nc + 1]);
          lp[(gsize) a * LP_RADII + r] = (float) (v * hann[r]);
        }
    }
  fftwf_free (mag);
  g_free (cy);
  g_free (lr);
  g_free (hann);
  fftwf_free (f);
  fftwf_free (in);
}

/* --- Gauss-Newton refinement ---------------------------------------------- */

static void
sim_compose_inverse (Sim *S, const double q[4], gboolean fixed_scale)
{
  /* S <- S o D^-1 with D(p) = [[1+q0, -q1], [q1, 1+q0]] p + (q2, q3). */
  double da = 1 + q[0], db = q[1];
  if (fixed_scale)
    {
      double m = sqrt (da * da + db * db);
      da /= m;
      db /= m;
    }
  double det = da * da + db * db;
  double ia = da / det, ib = -db / det;            /* D^-1 linear part */
  double itx = -(ia * q[2] - ib * q[3]);            /* D^-1 translation */
  double ity = -(ib * q[2] + ia * q[3]);
  Sim r;
  r.a = S->a * ia - S->b * ib;
  r.b = S->b * ia + S->a * ib;
  r.tx = S->a * itx - S->b * ity + S->tx;
  r.ty = S->b * itx + S->a * ity + S->ty;
  *S = r;
}

/* The k-th smallest of v[0..n) (Hoare's selection; reorders v). */
static float
select_kth (float *v, gsize n, gsize k)
{
  gsize lo = 0, hi = n - 1;
  while (lo < hi)
    {
      float pivot = v[(lo + hi) / 2];
      gsize i = lo, j = hi;
      while (i <= j)
        {
          while (v[i] < pivot)
            i++;
          while (v[j] > pivot)
            j--;
          if (i <= j)
            {
              float t = v[i];
              v[i] = v[j];
              v[j] = t;
              i++;
              if (j == 0)
                break;
              j--;
            }
        }
      if (k <= j)
        hi = j;
      else if (k >= i)
        lo = i;
      else
        break;
    }
  return v[k];
}

/* Weighted NCC of f's structure and m's structure warped by S (grid
 * coordinates, same n), over f's thorax window where m has data: one pass,
 * sums in double, on every step-th pixel of every step-th row (staggered,
 * as refine samples). On the top grid step 2: 16,384 of 65,536 pixels
 * estimate a correlation to within a few thousandths. */
static double
grid_ncc (const Grid *f, const Grid *m, const Sim *S, int step)
{
  int n = f->n;
  double c = (n - 1) / 2.0;
  double sw = 0, sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (int y = 0; y < n; y += step)
    {
      double py = y - c;
      double sx = S->a * -c - S->b * py + S->tx + c;
      double sy = S->b * -c + S->a * py + S->ty + c;
      const float *fl = f->lcn + (gsize) y * n, *fw = f->weight + (gsize) y * n;
      int xa, xb;
      row_inside (sx, sy, S->a, S->b, n, &xa, &xb);
      for (int x = (y / step) % step; x < n; x += step)
        {
          if (fw[x] <= 0)
            continue;
          gboolean in;
          float v = bilinear_row (m->lcnv, n, sx + S->a * x, sy + S->b * x, x >= xa && x < xb,
                                  &in);
          if (!in || isnan (v))
            continue;
          double w = fw[x], a = fl[x];
          sw += w;
          sa += w * a;
          sb += w * v;
          saa += w * a * a;
          sbb += w * v * v;
          sab += w * a * v;
        }
    }
  if (sw < 1)
    return 0;
  double vaa = saa - sa * sa / sw, vbb = sbb - sb * sb / sw, vab = sab - sa * sb / sw;
  return vaa > 0 && vbb > 0 ? vab / sqrt (vaa * vbb) : 0;
}

static gboolean solve4 (double H[4][4], const double g[4], double q[4]);

/* refine's template of a grid (see Grid). */
static void
grid_template (Grid *g)
{
  int n = g->n, step = REFINE_STEP;
  double c = (n - 1) / 2.0;
  guint np = 0;
  for (int y = 1; y < n - 1; y += step)
    for (int x = 1 + (y / step) % step; x < n - 1; x += step)
      np += g->weight[(gsize) y * n + x] > 0;
  g->np = np;
  g->tpx = g_new (float, MAX (np, 1));
  g->tpy = g_new (float, MAX (np, 1));
  g->tfl = g_new (float, MAX (np, 1));
  g->tfw = g_new (float, MAX (np, 1));
  g->tgx = g_new (float, MAX (np, 1));
  g->tgy = g_new (float, MAX (np, 1));
  guint k = 0;
  for (int y = 1; y < n - 1; y += step)
    for (int x = 1 + (y / step) % step; x < n - 1; x += step)
      {
        gsize i = (gsize) y * n + x;
        if (!(g->weight[i] > 0))
          continue;
        g->tgx[k] = 0.5f * (g->lcn[i + 1] - g->lcn[i - 1]);
        g->tgy[k] = 0.5f * (g->lcn[i + n] - g->lcn[i - n]);
        g->tfl[k] = g->lcn[i];
        g->tfw[k] = g->weight[i];
        g->tpx[k] = (float) (x - c);
        g->tpy[k] = (float) (y - c);
        k++;
      }
}

/* Refines S (grid coordinates of f and m, same n) in place, using f's
 * template (every REFINE_STEP-th pixel that has weight).
 * Returns FALSE if the system became singular or the estimate diverged. */
static gboolean
refine (const Grid *f, const Grid *m, Sim *S, gboolean fixed_scale, int max_iter, double tol)
{
  int n = f->n;
  double c = (n - 1) / 2.0;
  guint np = f->np;
  const float *gx = f->tgx, *gy = f->tgy, *fl = f->tfl, *fw = f->tfw, *ppx = f->tpx,
              *ppy = f->tpy;
  float *e = g_new (float, MAX (np, 1)), *ae = g_new (float, MAX (np, 1));
  gboolean ok = np >= 100;
  for (int it = 0; ok && it < max_iter; it++)
    {
      /* residuals at the used pixels; NAN where MOVING has no data (lcnv
       * is NAN there, and so is any interpolation that touches it) */
      guint nv = 0;
      for (guint k = 0; k < np; k++)
        {
          double px = ppx[k], py = ppy[k];
          double sx = S->a * px - S->b * py + S->tx + c, sy = S->b * px + S->a * py + S->ty + c;
          gboolean in;
          float v = bilinear (m->lcnv, n, n, sx, sy, &in);
          e[k] = in ? v - fl[k] : NAN;
          nv += !isnan (e[k]);
        }
      if (nv < 100)
        {
          ok = FALSE;
          break;
        }
      /* Huber scale from the median absolute residual of about 256 of them
       * (a scale, not a result: its sampling error of a few per cent moves
       * the estimates by hundredths of a pixel) */
      guint stride = MAX (1u, np / 256), na = 0;
      for (guint k = 0; k < np; k += stride)
        if (!isnan (e[k]))
          ae[na++] = fabsf (e[k]);
      double huber = 1.345 * 1.4826 * MAX (na ? select_kth (ae, na, na / 2) : 0, 1e-3);
      /* the upper triangle of H and g in locals, not a stack array the
       * compiler would load and store for every pixel */
      double h00 = 0, h01 = 0, h02 = 0, h03 = 0, h11 = 0, h12 = 0, h13 = 0, h22 = 0, h23 = 0,
             h33 = 0, g0 = 0, g1 = 0, g2 = 0, g3 = 0;
      for (guint k = 0; k < np; k++)
        {
          if (isnan (e[k]))
            continue;
          double w = fw[k], ek = e[k], aek = fabs (ek);
          if (aek > huber)
            w *= huber / aek;
          double px = ppx[k], py = ppy[k], tx = gx[k], ty = gy[k];
          double j0 = tx * px + ty * py, j1 = -tx * py + ty * px, j2 = tx, j3 = ty;
          double w0 = w * j0, w1 = w * j1, w2 = w * j2, w3 = w * j3;
          g0 += w0 * ek;
          g1 += w1 * ek;
          g2 += w2 * ek;
          g3 += w3 * ek;
          h00 += w0 * j0;
          h01 += w0 * j1;
          h02 += w0 * j2;
          h03 += w0 * j3;
          h11 += w1 * j1;
          h12 += w1 * j2;
          h13 += w1 * j3;
          h22 += w2 * j2;
          h23 += w2 * j3;
          h33 += w3 * j3;
        }
      double H[4][4] = { { h00, h01, h02, h03 }, { h01, h11, h12, h13 }, { h02, h12, h22, h23 },
                         { h03, h13, h23, h33 } };
      double g[4] = { g0, g1, g2, g3 };
      if (fixed_scale)
        {
          /* scale held: drop q0 */
          for (int r = 0; r < 4; r++)
            H[0][r] = H[r][0] = 0;
          H[0][0] = 1;
          g[0] = 0;
        }
      double q[4];
      if (!solve4 (H, g, q))
        {
          ok = FALSE;
          break;
        }
      if (!isfinite (q[0] + q[1] + q[2] + q[3]) || fabs (q[0]) > 0.2 || fabs (q[1]) > 0.2
          || fabs (q[2]) > n / 8.0 || fabs (q[3]) > n / 8.0)
        {
          ok = FALSE;
          break;
        }
      sim_compose_inverse (S, q, fixed_scale);
      /* converged: the change moves no point of the grid by tol px */
      double move = fabs (q[2]) + fabs (q[3]) + (fabs (q[0]) + fabs (q[1])) * n / 2;
      if (move < tol)
        break;
    }
  g_free (e);
  g_free (ae);
  return ok;
}

/* H q = g for a 4x4 system, Gaussian elimination with partial pivoting. */
static gboolean
solve4 (double H[4][4], const double g[4], double q[4])
{
  double A[4][5];
  for (int r = 0; r < 4; r++)
    {
      for (int c = 0; c < 4; c++)
        A[r][c] = H[r][c];
      A[r][4] = g[r];
    }
  for (int col = 0; col < 4; col++)
    {
      int piv = col;
      for (int r = col + 1; r < 4; r++)
        if (fabs (A[r][col]) > fabs (A[piv][col]))
          piv = r;
      if (fabs (A[piv][col]) < 1e-12)
        return FALSE;
      for (int c = 0; c < 5; c++)
        {
          double t = A[col][c];
          A[col][c] = A[piv][c];
          A[piv][c] = t;
        }
      for (int r = 0; r < 4; r++)
        if (r != col)
          {
            double fct = A[r][col] / A[col][col];
            for (int c = col; c < 5; c++)
              A[r][c] -= fct * A[col][c];
          }
    }
  for (int r = 0; r < 4; r++)
    q[r] = A[r][4] / A[r][r];
  return TRUE;
}

/* --- the pair --------------------------------------------------------------- */

/* Similarity of grid coordinates (fixed grid -> moving grid, same n). */
static void
sim_from_params (Sim *S, double s, double theta, double tx, double ty)
{
  S->a = s * cos (theta);
  S->b = s * sin (theta);
  S->tx = tx;
  S->ty = ty;
}

/* The fixed side of the translation search: spectrum of lcn * weight. */
typedef struct {
  int n;
  fftwf_complex *fa;
  float *mprod;      /* moving lcn * weight, warped per hypothesis */
  float *buf;
  fftwf_complex *fb;
} Search;

static void
search_init (Search *q, const Grid *f, const Grid *m)
{
  int n = f->n;
  gsize nn = (gsize) n * n, nc = (gsize) n * (n / 2 + 1);
  const Plans *p = get_plans (n, n);
  q->n = n;
  q->fa = fftwf_alloc_complex (nc);
  q->fb = fftwf_alloc_complex (nc);
  q->buf = fftwf_alloc_real (nn);
  q->mprod = fftwf_alloc_real (nn);
  for (gsize i = 0; i < nn; i++)
    {
      q->buf[i] = f->lcn[i] * f->weight[i];
      q->mprod[i] = m->lcn[i] * m->weight[i];
    }
  fftwf_execute_dft_r2c (p->fwd, q->buf, q->fa);
}

static void
search_clear (Search *q)
{
  fftwf_free (q->fa);
  fftwf_free (q->fb);
  fftwf_free (q->buf);
  fftwf_free (q->mprod);
}

/* Translation peak with rotation and scale rs undone. */
static void
translation_at (Search *q, const Sim *rs, double psr_above, Peak *pk)
{
  int n = q->n;
  gsize nc = (gsize) n * (n / 2 + 1);
  const Plans *p = get_plans (n, n);
  warp_grid (q->mprod, n, rs, q->buf);
  fftwf_execute_dft_r2c (p->fwd, q->buf, q->fb);
  for (gsize i = 0; i < nc; i++)
    {
      /* conj(A) * B, whitened: a peak at t where b(p) = a(p - t) */
      float re = q->fa[i][0] * q->fb[i][0] + q->fa[i][1] * q->fb[i][1];
      float im = q->fa[i][0] * q->fb[i][1] - q->fa[i][1] * q->fb[i][0];
      float inv = 1.0f / (sqrtf (re * re + im * im) + 1e-12f);
      q->fb[i][0] = re * inv;
      q->fb[i][1] = im * inv;
    }
  fftwf_execute_dft_c2r (p->inv, q->fb, q->buf);
  double lim = n / 4.0;
  *pk = find_peak (q->buf, n, n, -lim, lim, -lim, lim, psr_above);
}

/* The grids of one film: fine (optional), coarse, mid (half the coarse
 * size: Fourier-Mellin and a refinement step) and search (a quarter: the
 * hypotheses), each at least 64 px; and the log-polar spectrum of mid. */
typedef struct {
  Grid fine, coarse, mid, search;
  gboolean has_fine;
  double k;        /* top grid px per film px (across) */
  double aspect;   /* a film pixel's height over its width */
  float *lp;       /* LP_ANGLES x LP_RADII */
  double lp_rmin, lp_dlog;
} Pyr;

static void
pyr_build (Pyr *p, const CxrImage *im, double aspect, int nf, int nc)
{
  memset (p, 0, sizeof *p);
  int top = nf ? nf : nc;
  p->aspect = aspect;
  p->k = top / MAX (im->width, im->height * aspect);
  p->has_fine = nf > 0;
  Grid *t = nf ? &p->fine : &p->coarse;
  grid_resample (t, im->data, im->width, im->height, top, p->k, aspect);
  grid_features (t);
  if (nf)
    grid_from_grid (&p->coarse, &p->fine, nc);
  grid_from_grid (&p->mid, &p->coarse, MAX (64, nc / 2));
  grid_from_grid (&p->search, &p->mid, MAX (64, nc / 4));

  const Grid *g = &p->mid;
  gsize nn = (gsize) g->n * g->n;
  float *a = falloc (nn);
  for (gsize i = 0; i < nn; i++)
    a[i] = g->lcn[i] * g->weight[i];
  p->lp_rmin = 2.0;
  p->lp_dlog = log ((g->n / 2.0 - 1) / p->lp_rmin) / (LP_RADII - 1);
  p->lp = falloc ((gsize) LP_ANGLES * LP_RADII);
  log_polar_spectrum (a, g->n, p->lp, p->lp_rmin, p->lp_dlog);
  fftwf_free (a);
}

static void
pyr_clear (Pyr *p)
{
  grid_clear (&p->fine);
  grid_clear (&p->coarse);
  grid_clear (&p->mid);
  grid_clear (&p->search);
  fftwf_free (p->lp);
}

/* Fourier-Mellin on the two films' log-polar spectra: the rotation (rad)
 * and scale of MOVING relative to FIXED in the common frame of the grids
 * (each film fitted to the same extent), or FALSE if no peak lies inside
 * the limits. Registering FIXED to MOVING gives (-theta, 1/s). */
static gboolean
fourier_mellin (const Pyr *F, const Pyr *M, const CxrRegisterOptions *opt, double *theta,
                double *scale)
{
  double dlog = F->lp_dlog;
  float *corr = falloc ((gsize) LP_ANGLES * LP_RADII);
  cross_power (F->lp, M->lp, LP_ANGLES, LP_RADII, corr);
  double amax = MIN (opt->max_angle_deg, 90.0) / 180.0 * LP_ANGLES;
  /* LP_m(rho, phi) = LP_f(rho + log s, phi - theta): shift (theta, -log s) */
  double rlo = opt->fixed_scale ? 0 : -log (opt->max_scale) / dlog;
  double rhi = opt->fixed_scale ? 0 : -log (opt->min_scale) / dlog;
  Peak pk = find_peak (corr, LP_ANGLES, LP_RADII, -amax, amax, floor (rlo), ceil (rhi), INFINITY);
  fftwf_free (corr);
  *theta = pk.y * G_PI / LP_ANGLES;
  *scale = opt->fixed_scale ? 1.0 : exp (-pk.x * dlog);
  return isfinite (pk.peak);
}

static const Grid *
pyr_top (const Pyr *p)
{
  return p->has_fine ? &p->fine : &p->coarse;
}

/* A transform between the films' physical frames: film pixel (x, y) is
 * at (x - cx, (y - cy) * aspect), in units of the film's pixel width. For
 * square pixels this is the public convention; cxr_register_pair reports
 * dy in MOVING's pixels (dy / aspect). */
typedef struct {
  double s, theta, dx, dy;
} Film;

static void
film_apply (const Film *t, double x, double y, double *ox, double *oy)
{
  *ox = t->s * (cos (t->theta) * x - sin (t->theta) * y) + t->dx;
  *oy = t->s * (sin (t->theta) * x + cos (t->theta) * y) + t->dy;
}

static Film
film_inverse (const Film *t)
{
  Film r = { 1 / t->s, -t->theta, 0, 0 };
  double x, y;
  film_apply (&r, t->dx, t->dy, &x, &y);
  r.dx = -x;
  r.dy = -y;
  return r;
}

/* Geodesic midpoint X (X^-1 Y)^(1/2) on the similarity group, with a
 * transform written as p -> z p + t over complex numbers (z = s e^{i theta}).
 * It satisfies mid(X, Y)^-1 = mid(Y^-1, X^-1), which is what makes
 * register(B, A) the exact inverse of register(A, B). */
static Film
film_midpoint (const Film *a, const Film *b)
{
  double complex za = a->s * cexp (I * a->theta), ta = a->dx + I * a->dy;
  double complex zb = b->s * cexp (I * b->theta), tb = b->dx + I * b->dy;
  /* W = A^-1 B = (zb / za, (tb - ta) / za) */
  double complex zw = zb / za, tw = (tb - ta) / za;
  /* W^(1/2) = (sqrt zw, tw / (1 + sqrt zw)), principal root */
  double complex zh = csqrt (zw), th = tw / (1 + zh);
  /* A W^(1/2) = (za zh, za th + ta) */
  double complex z = za * zh, t = za * th + ta;
  Film r = { cabs (z), carg (z), creal (t), cimag (t) };
  return r;
}

typedef struct {
  Sim S;            /* on the top grids: p'_grid = S p_grid */
  double psr;
  gboolean ok;
} Raw;

/* Grid similarity -> film transform: p_grid = kf p, p'_grid = km p'. */
static Film
raw_to_film (const Raw *r, const Pyr *f, const Pyr *m)
{
  double ratio = m->k / f->k;
  Film t = { sqrt (r->S.a * r->S.a + r->S.b * r->S.b) / ratio, atan2 (r->S.b, r->S.a),
             r->S.tx / m->k, r->S.ty / m->k };
  return t;
}

static Sim
film_to_sim (const Film *t, const Pyr *f, const Pyr *m)
{
  Sim S;
  sim_from_params (&S, t->s * m->k / f->k, t->theta, t->dx * m->k, t->dy * m->k);
  return S;
}

static double
pyr_ncc (const Pyr *f, const Pyr *m, const Sim *S, int step)
{
  return grid_ncc (pyr_top (f), pyr_top (m), S, step);
}

/* One direction: hypotheses, scoring, refinement, all on the grids, whose
 * common frame fits each film to the same extent: the scale limits apply
 * there, whatever the films' sizes. fm: Fourier-Mellin's (rotation, scale
 * in that frame), or NULL. */
static void
estimate (const Pyr *F, const Pyr *M, const CxrRegisterOptions *opt, const double *fm, Raw *raw)
{
  const Grid *fc = &F->coarse, *mc = &M->coarse, *Fs = &F->search, *Ms = &M->search;
  int nc = fc->n, ns = Fs->n;
  memset (raw, 0, sizeof *raw);
  gint64 t_start = g_get_monotonic_time ();

  /* Hypotheses for rotation and scale: Fourier-Mellin's, and a grid over
   * the allowed ranges (real follow-up films defeat Fourier-Mellin alone:
   * breathing, collimation and exposure change the spectra more than the
   * pose does). Each is scored by the translation peak on the search grid. */
  GArray *hyp = g_array_new (FALSE, FALSE, sizeof (double) * 2);
  if (fm)
    g_array_append_vals (hyp, fm, 1);
  {
    double amax = MIN (opt->max_angle_deg, 90.0);
    const double AST = 6.0, SST = 1.1;
    int na = (int) floor (amax / AST);
    int nsc = opt->fixed_scale ? 0
                               : (int) ceil (log (opt->max_scale / opt->min_scale) / log (SST));
    for (int ia = -na; ia <= na; ia++)
      for (int is = 0; is <= nsc; is++)
        {
          double sc = opt->fixed_scale ? 1.0
                        : opt->min_scale * exp (is * log (opt->max_scale / opt->min_scale)
                                                / MAX (nsc, 1));
          double h[2] = { ia * AST * G_PI / 180, sc };
          g_array_append_val (hyp, h);
          if (opt->max_angle_deg > 90)
            {
              double h2[2] = { h[0] + G_PI, sc };
              g_array_append_val (hyp, h2);
            }
        }
  }
  /* Score every hypothesis; keep the best few. */
  enum { KEEP = 4 };
  Search q;
  search_init (&q, Fs, Ms);
  Sim best[KEEP];
  double best_score[KEEP], best_psr[KEEP] = { 0 };
  for (int k = 0; k < KEEP; k++)
    best_score[k] = -INFINITY;
  for (guint h = 0; h < hyp->len; h++)
    {
      const double *hv = &g_array_index (hyp, double, 2 * h);
      Sim S;
      Peak tp;
      sim_from_params (&S, hv[1], hv[0], 0, 0);
      /* the PSR only for a peak that enters the best KEEP */
      translation_at (&q, &S, best_score[KEEP - 1], &tp);
      if (!isfinite (tp.peak))
        continue;
      S.tx = S.a * tp.x - S.b * tp.y;
      S.ty = S.b * tp.x + S.a * tp.y;
      int k = KEEP - 1;
      if (tp.peak <= best_score[k])
        continue;
      while (k > 0 && best_score[k - 1] < tp.peak)
        {
          best[k] = best[k - 1];
          best_score[k] = best_score[k - 1];
          best_psr[k] = best_psr[k - 1];
          k--;
        }
      best[k] = S;
      best_score[k] = tp.peak;
      best_psr[k] = tp.psr;
    }
  g_debug ("register: %u hypotheses scored in %.1f ms", hyp->len, (g_get_monotonic_time () - t_start) / 1e3);
  g_array_unref (hyp);
  search_clear (&q);

  /* Refine the best hypotheses on the search grid; keep the one whose
   * structure correlates best, then refine it on the mid, coarse (and fine)
   * grids. */
  Sim S = { 1, 0, 0, 0 };
  double s_ncc = -INFINITY;
  for (int k = 0; k < KEEP; k++)
    {
      if (!isfinite (best_score[k]))
        continue;
      Sim T = best[k];
      if (!refine (Fs, Ms, &T, opt->fixed_scale, 6, 0.05))
        continue;
      double c = grid_ncc (Fs, Ms, &T, 1);
      if (c > s_ncc)
        {
          s_ncc = c;
          S = T;
          raw->psr = best_psr[k];
        }
    }

  g_debug ("register: candidates refined at %.1f ms", (g_get_monotonic_time () - t_start) / 1e3);
  raw->ok = isfinite (s_ncc);
  if (raw->ok && F->mid.n != ns)
    {
      double up = F->mid.n / (double) ns;
      S.tx *= up;
      S.ty *= up;
      ns = F->mid.n;
      raw->ok = refine (&F->mid, &M->mid, &S, opt->fixed_scale, 6, 0.02);
    }
  if (raw->ok)
    {
      double up = nc / (double) ns;
      S.tx *= up;
      S.ty *= up;
      raw->ok = refine (fc, mc, &S, opt->fixed_scale, 6, 0.01);
    }
  if (raw->ok && F->has_fine)
    {
      double up = F->fine.n / (double) nc;
      S.tx *= up;
      S.ty *= up;
      raw->ok = refine (&F->fine, &M->fine, &S, opt->fixed_scale, 6, 0.002);
    }
  g_debug ("register: estimate done at %.1f ms", (g_get_monotonic_time () - t_start) / 1e3);
  raw->S = S;
}

/* Refines a top-grid similarity on the coarse then the fine grid; returns
 * its correlation on the top grid (-inf if it diverged). */
static double
polish (const Pyr *F, const Pyr *M, Sim *S, const CxrRegisterOptions *opt)
{
  double down = F->coarse.n / (double) pyr_top (F)->n;
  Sim T = *S;
  T.tx *= down;
  T.ty *= down;
  if (!refine (&F->coarse, &M->coarse, &T, opt->fixed_scale, 6, 0.01))
    return -INFINITY;
  if (F->has_fine)
    {
      T.tx /= down;
      T.ty /= down;
      if (!refine (&F->fine, &M->fine, &T, opt->fixed_scale, 6, 0.002))
        return -INFINITY;
    }
  *S = T;
  return pyr_ncc (F, M, S, 1);
}

/* How far apart (in MOVING's frame) two estimates of one transform put the
 * centre and four lung-field points of a w x h FIXED: the largest of the
 * five distances. */
static double
disagreement (const Film *t1, const Film *t2, int w, int h)
{
  double d = 0;
  for (int k = 0; k < 5; k++)
    {
      double px = k == 0 ? 0 : (k & 1 ? 1 : -1) * w / 4.0;
      double py = k == 0 ? 0 : (k & 2 ? 1 : -1) * h / 4.0;
      double ax, ay, bx, by;
      film_apply (t1, px, py, &ax, &ay);
      film_apply (t2, px, py, &bx, &by);
      d = MAX (d, hypot (ax - bx, ay - by));
    }
  return d;
}

/* Whether the forward result and the inverse of the backward one agree
 * within AGREE_PX: then the two cross-seeding polishes are skipped. */
static gboolean
directions_agree (const Raw *fw, const Raw *bw, const Pyr *F, const Pyr *M, int w, int h)
{
  Film t1 = raw_to_film (fw, F, M), t2 = raw_to_film (bw, M, F);
  Film t2i = film_inverse (&t2);
  return disagreement (&t1, &t2i, w, h) <= AGREE_PX;
}

struct _CxrRegisterFilm {
  Pyr pyr;
  int width, height;  /* the film's, px */
  int nc, nf;         /* grid sizes it was prepared with */
};

/* @opt = @options or the defaults */
static void
options_get (const CxrRegisterOptions *options, CxrRegisterOptions *opt)
{
  if (options)
    *opt = *options;
  else
    cxr_register_options_init (opt);
}

/**
 * cxr_register_film_new:
 * Prepares @film (pixel aspect @aspect, 0 = square) for registration;
 * NULL with @error set if it is too small or the aspect is not valid.
 */
CxrRegisterFilm *
cxr_register_film_new (const CxrImage *film, double aspect, const CxrRegisterOptions *options,
                       GError **error)
{
  g_return_val_if_fail (film != NULL, NULL);
  CxrRegisterOptions opt;
  options_get (options, &opt);
  if (film->width < 32 || film->height < 32)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "a film of %dx%d px: registration needs at least 32x32", film->width,
                   film->height);
      return NULL;
    }
  if (aspect != 0 && !(aspect >= 0.25 && aspect <= 4))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "pixel aspect %g: it must be 0 (square) or within 0.25..4", aspect);
      return NULL;
    }
  CxrRegisterFilm *f = g_new0 (CxrRegisterFilm, 1);
  f->nc = opt.coarse_size >= 64 ? opt.coarse_size : 256;
  f->nf = opt.fine_size > f->nc ? opt.fine_size : 0;
  f->width = film->width;
  f->height = film->height;
  pyr_build (&f->pyr, film, aspect > 0 ? aspect : 1.0, f->nf, f->nc);
  return f;
}

void
cxr_register_film_free (CxrRegisterFilm *film)
{
  if (film == NULL)
    return;
  pyr_clear (&film->pyr);
  g_free (film);
}

/* @opt = @options or the defaults; @out reset to a failed identity. */
static void
pair_begin (const CxrRegisterOptions *options, CxrRegisterOptions *opt, CxrRegistration *out)
{
  options_get (options, opt);
  memset (out, 0, sizeof *out);
  out->scale = 1;
  out->status = CXR_REGISTER_FAILED;
}

static gboolean
check_options (const CxrRegisterOptions *opt, GError **error)
{
  if (opt->min_scale <= 0 || opt->max_scale < opt->min_scale)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "scale limits %g..%g are not valid",
                   opt->min_scale, opt->max_scale);
      return FALSE;
    }
  return TRUE;
}

/**
 * cxr_register_pair:
 * @fixed: the reference film
 * @moving: the film to align to it
 * @options: (nullable): search limits and grid sizes; %NULL for defaults
 * @out: (out caller-allocates): the transform (see the convention in
 *   register.h), its confidence and status
 *
 * Returns: %FALSE only for unusable input (too small); a registration that
 * does not converge returns %TRUE with status CXR_REGISTER_FAILED.
 */
gboolean
cxr_register_pair (const CxrImage *fixed, const CxrImage *moving, const CxrRegisterOptions *options,
                   CxrRegistration *out, GError **error)
{
  g_return_val_if_fail (fixed != NULL && moving != NULL && out != NULL, FALSE);
  gint64 t0 = g_get_monotonic_time ();
  CxrRegisterOptions opt;
  pair_begin (options, &opt, out);
  if (!check_options (&opt, error))
    return FALSE;
  g_autoptr (CxrRegisterFilm) F = cxr_register_film_new (fixed, opt.fixed_aspect, &opt, error);
  if (F == NULL)
    {
      g_prefix_error (error, "fixed film: ");
      return FALSE;
    }
  g_autoptr (CxrRegisterFilm) M = cxr_register_film_new (moving, opt.moving_aspect, &opt, error);
  if (M == NULL)
    {
      g_prefix_error (error, "moving film: ");
      return FALSE;
    }
  g_debug ("register: pyramids %.1f ms", (g_get_monotonic_time () - t0) / 1e3);
  if (!cxr_register_films (F, M, &opt, out, error))
    return FALSE;
  out->elapsed_ms = (g_get_monotonic_time () - t0) / 1000.0;
  return TRUE;
}

gboolean
cxr_register_films (const CxrRegisterFilm *fixed, const CxrRegisterFilm *moving,
                    const CxrRegisterOptions *options, CxrRegistration *out, GError **error)
{
  g_return_val_if_fail (fixed != NULL && moving != NULL && out != NULL, FALSE);
  gint64 t0 = g_get_monotonic_time ();
  CxrRegisterOptions opt;
  pair_begin (options, &opt, out);
  if (fixed->nc != moving->nc || fixed->nf != moving->nf)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "films prepared with different grids (%d/%d and %d/%d px)", fixed->nc,
                   fixed->nf, moving->nc, moving->nf);
      return FALSE;
    }
  if (!check_options (&opt, error))
    return FALSE;
  const Pyr F = fixed->pyr, M = moving->pyr;
  /* Both directions on the same pyramids; the result is the midpoint of
   * the forward estimate and the inverse of the backward one, so that
   * registering B to A gives the inverse of registering A to B, and their
   * disagreement is evidence against the result. */
  gint64 tp1 = g_get_monotonic_time ();
  Raw fw, bw;
  double fm[2], fmb[2];
  gboolean has_fm = fourier_mellin (&F, &M, &opt, &fm[0], &fm[1]);
  fmb[0] = -fm[0];
  fmb[1] = 1 / fm[1];
  estimate (&F, &M, &opt, has_fm ? fm : NULL, &fw);
  gint64 tp2 = g_get_monotonic_time ();
  estimate (&M, &F, &opt, has_fm ? fmb : NULL, &bw);
  g_debug ("register: forward %.1f ms, backward %.1f ms", (tp2 - tp1) / 1e3,
           (g_get_monotonic_time () - tp2) / 1e3);
  /* Cross-seeding: each direction is also refined from the inverse of the
   * other's result, and keeps whichever correlates better, so that the two
   * disagree only where the films really admit different similarity fits. */
  int pw = fixed->width, ph = (int) lround (fixed->height * F.aspect);
  if (fw.ok && bw.ok && !directions_agree (&fw, &bw, &F, &M, pw, ph))
    {
      Film a = raw_to_film (&fw, &F, &M), b = raw_to_film (&bw, &M, &F);
      Film ai = film_inverse (&a), bi = film_inverse (&b);
      Sim sf = film_to_sim (&bi, &F, &M), sb = film_to_sim (&ai, &M, &F);
      double cf = polish (&F, &M, &sf, &opt), cb = polish (&M, &F, &sb, &opt);
      /* every pixel: the two may differ by less than sampling would */
      double cf0 = pyr_ncc (&F, &M, &fw.S, 1), cb0 = pyr_ncc (&M, &F, &bw.S, 1);
      if (cf > cf0)
        fw.S = sf;
      if (cb > cb0)
        bw.S = sb;
    }
  Film t1 = raw_to_film (&fw, &F, &M), t2 = raw_to_film (&bw, &M, &F);
  Film t2i = film_inverse (&t2);
  Film t = film_midpoint (&t1, &t2i);

  /* Disagreement, in MOVING's pixels scaled to a 1024-px film, at the
   * centre and at four points of the lung fields. */
  double asym = disagreement (&t1, &t2i, pw, ph);
  asym *= 1024.0 / MAX (moving->width, moving->height * M.aspect);

  out->scale = t.s;
  out->angle_deg = t.theta * 180 / G_PI;
  out->dx_px = t.dx;
  out->dy_px = t.dy / M.aspect;
  out->fixed_aspect = F.aspect;
  out->moving_aspect = M.aspect;
  out->asymmetry_px = asym;
  out->psr = MIN (fw.psr, bw.psr);
  Sim ident = { 1, 0, 0, 0 }; /* centres and extents matched */
  out->ncc_before = pyr_ncc (&F, &M, &ident, 2);
  Sim S = film_to_sim (&t, &F, &M);
  out->ncc_after = pyr_ncc (&F, &M, &S, 2);
  /* Agreement of the two directions tempers the correlation: a result
   * that depends on which film is fixed is not trusted. */
  out->confidence = CLAMP (out->ncc_after, 0.0, 1.0) * exp (-asym / 10.0);

  double lim_a = opt.max_angle_deg > 90 ? 180 : opt.max_angle_deg;
  if (!fw.ok || !bw.ok || !isfinite (out->dx_px + out->dy_px + out->angle_deg + out->scale))
    out->reason = "refinement diverged";
  else if (fabs (out->angle_deg) > lim_a + 0.5)
    out->reason = "rotation outside the search limits";
  else if (!opt.fixed_scale && (hypot (S.a, S.b) < opt.min_scale * 0.99
                                 || hypot (S.a, S.b) > opt.max_scale * 1.01))
    out->reason = "scale outside the search limits";
  else if (asym > 16)
    out->reason = "forward and backward registrations disagree by more than 16 px";
  else if (out->confidence < opt.min_confidence)
    out->reason = "confidence below min_confidence";
  if (out->reason)
    out->status = CXR_REGISTER_FAILED;
  else if (out->confidence < opt.ok_confidence)
    {
      out->status = CXR_REGISTER_LOW_CONFIDENCE;
      out->reason = asym > 4 ? "forward and backward registrations disagree by more than 4 px"
                             : "confidence below ok_confidence";
    }
  else
    out->status = CXR_REGISTER_OK;

  out->elapsed_ms = (g_get_monotonic_time () - t0) / 1000.0;
  return TRUE;
}

/**
 * cxr_register_offset:
 * Maps a point of FIXED, (x, y) px from its centre, to MOVING, px from
 * its centre: through the films' physical frames when their pixels are
 * not square (fixed_aspect, moving_aspect; 0 counts as 1).
 */
void
cxr_register_offset (const CxrRegistration *r, double x, double y, double *mx, double *my)
{
  double af = r->fixed_aspect > 0 ? r->fixed_aspect : 1.0;
  double am = r->moving_aspect > 0 ? r->moving_aspect : 1.0;
  double th = r->angle_deg * G_PI / 180;
  double py = y * af;
  *mx = r->scale * (cos (th) * x - sin (th) * py) + r->dx_px;
  *my = (r->scale * (sin (th) * x + cos (th) * py)) / am + r->dy_px;
}

/**
 * cxr_register_point:
 * Maps film coordinates (x, y) of FIXED to MOVING.
 */
void
cxr_register_point (const CxrRegistration *r, int fw, int fh, int mw, int mh, double x, double y,
                    double *mx, double *my)
{
  cxr_register_offset (r, x - (fw - 1) / 2.0, y - (fh - 1) / 2.0, mx, my);
  *mx += (mw - 1) / 2.0;
  *my += (mh - 1) / 2.0;
}


/* The four weights of Keys' cubic (1981, a = -0.5) for taps -1, 0, 1, 2
 * and a sample at fraction f in [0, 1) past tap 0: the kernel at distances
 * 1 + f, f, 1 - f and 2 - f, each on its own piece, so without branches. */
static inline void
keys4 (double f, double w[4])
{
  double t = 1 + f, u = 1 - f, v = 2 - f;
  w[0] = ((-0.5 * t + 2.5) * t - 4) * t + 2;
  w[1] = (1.5 * f - 2.5) * f * f + 1;
  w[2] = (1.5 * u - 2.5) * u * u + 1;
  w[3] = ((-0.5 * v + 2.5) * v - 4) * v + 2;
}

/**
 * cxr_register_warp:
 * Resamples @moving into the frame of a width x height FIXED film with
 * bicubic (Keys) interpolation; points that fall outside MOVING are 0.
 *
 * Returns: (transfer full): the warped film.
 */
CxrImage *
cxr_register_warp (const CxrImage *moving, const CxrRegistration *r, int width, int height)
{
  CxrImage *out = cxr_image_new (width, height);
  int mw = moving->width, mh = moving->height;
  /* The map is affine in pixel coordinates: its origin and steps, once. */
  double ox, oy, ax, ay, bx, by;
  cxr_register_point (r, width, height, mw, mh, 0, 0, &ox, &oy);
  cxr_register_point (r, width, height, mw, mh, 1, 0, &ax, &ay);
  cxr_register_point (r, width, height, mw, mh, 0, 1, &bx, &by);
  ax -= ox, ay -= oy, bx -= ox, by -= oy;
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      {
        double sx = ox + ax * x + bx * y, sy = oy + ay * x + by * y;
        if (!(sx >= -0.5 && sy >= -0.5 && sx <= mw - 0.5 && sy <= mh - 0.5))
          continue;
        int x0 = (int) floor (sx), y0 = (int) floor (sy);
        double wx[4], wy[4];
        keys4 (sx - x0, wx);
        keys4 (sy - y0, wy);
        int xs[4];
        for (int i = 0; i < 4; i++)
          xs[i] = CLAMP (x0 + i - 1, 0, mw - 1);
        double acc = 0;
        for (int j = 0; j < 4; j++)
          {
            const float *row = moving->data + (gsize) CLAMP (y0 + j - 1, 0, mh - 1) * mw;
            acc += wy[j] * (wx[0] * row[xs[0]] + wx[1] * row[xs[1]] + wx[2] * row[xs[2]]
                            + wx[3] * row[xs[3]]);
          }
        out->data[(gsize) y * width + x] = (float) acc;
      }
  return out;
}
