/* SPDX-License-Identifier: MIT
 *
 * Registration, the Fourier side: FFTW plans, phase correlation with a
 * parabolic sub-pixel peak and its peak-to-sidelobe ratio, the log-polar
 * magnitude spectrum of Fourier-Mellin (Reddy & Chatterji, IEEE TIP 1996),
 * and the translation search of a rotation and scale hypothesis.
 *
 * FFTW plans are made once per size under one mutex and executed with the
 * thread-safe new-array interface, so any number of threads may register
 * pairs at once.
 */
#include <math.h>
#include <string.h>

#include "register-private.h"

static GMutex plan_lock;
static GHashTable *plan_cache;

/* The plans of an n0 x n1 transform, made once per size. */
const Plans *
cxr__fft_plans (int n0, int n1)
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

/* --- phase correlation -------------------------------------------------- */

/* Whitened cross-power spectrum of a and b (n0 x n1, row-major), inverse
 * transformed into corr (unnormalised). */
void
cxr__cross_power (const float *a, const float *b, int n0, int n1, float *corr)
{
  const Plans *p = cxr__fft_plans (n0, n1);
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
Peak
cxr__find_peak (const float *corr, int n0, int n1, double ylo, double yhi, double xlo, double xhi,
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

void
cxr__log_polar_spectrum (const float *img, int n, float *lp, double rmin, double dlog)
{
  const Plans *p = cxr__fft_plans (n, n);
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
  float *mag = cxr__falloc ((gsize) nc * nc);
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
          double v
              = (1 - ay) * ((1 - ax) * q[0] + ax * q[1]) + ay * ((1 - ax) * q[nc] + ax * q[nc + 1]);
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

void
cxr__search_init (Search *q, const Grid *f, const Grid *m)
{
  int n = f->n;
  gsize nn = (gsize) n * n, nc = (gsize) n * (n / 2 + 1);
  const Plans *p = cxr__fft_plans (n, n);
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

void
cxr__search_clear (Search *q)
{
  fftwf_free (q->fa);
  fftwf_free (q->fb);
  fftwf_free (q->buf);
  fftwf_free (q->mprod);
}

/* Translation peak with rotation and scale rs undone. */
void
cxr__translation_at (Search *q, const Sim *rs, double psr_above, Peak *pk)
{
  int n = q->n;
  gsize nc = (gsize) n * (n / 2 + 1);
  const Plans *p = cxr__fft_plans (n, n);
  cxr__warp_grid (q->mprod, n, rs, q->buf);
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
  *pk = cxr__find_peak (q->buf, n, n, -lim, lim, -lim, lim, psr_above);
}
