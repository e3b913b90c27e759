/* SPDX-License-Identifier: MIT
 *
 * Registration, the refinement: all four parameters of a similarity by
 * robust Gauss-Newton (inverse compositional Lucas-Kanade, Baker &
 * Matthews IJCV 2004, with Huber weights re-estimated each iteration) on
 * the structure images of two grids, from FIXED's template of every
 * second pixel with weight (register-grid.c).
 *
 * This replaces the upsampled-DFT peak refinement of Guizar-Sicairos et
 * al. (Opt. Lett. 2008): it reaches a few hundredths of a pixel for
 * rotation, scale and translation jointly, where a translation-only peak
 * refinement cannot correct the rotation and scale errors left by the
 * log-polar grid.
 */
#include <math.h>
#include <string.h>

#include "register-private.h"

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
  double ia = da / det, ib = -db / det;  /* D^-1 linear part */
  double itx = -(ia * q[2] - ib * q[3]); /* D^-1 translation */
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

static gboolean solve4 (double H[4][4], const double g[4], double q[4]);

#ifdef CXR_HAVE_AVX2
/* The residuals e[k] for k from 0, four at a time, as the scalar loop of
 * cxr__refine computes them (the same bits); returns where it stopped. */
__attribute__ ((target ("avx2"))) static guint
residuals_avx2 (const Grid *f, const Grid *m, const Sim *S, float *e)
{
  int n = f->n;
  guint np = f->np, k = 0;
  for (; k + 4 <= np; k += 4)
    {
      __m256d px = _mm256_cvtps_pd (_mm_loadu_ps (f->tpx + k));
      __m256d py = _mm256_cvtps_pd (_mm_loadu_ps (f->tpy + k));
      __m256d sx, sy;
      cxr__sim_map4_avx2 (S, (n - 1) / 2.0, px, py, &sx, &sy);
      __m128 v = cxr__bilinear4_avx2 (m->lcnv, n, sx, sy);
      _mm_storeu_ps (e + k, _mm_sub_ps (v, _mm_loadu_ps (f->tfl + k)));
    }
  return k;
}
#endif

/* Refines S (grid coordinates of f and m, same n) in place, using f's
 * template (every REFINE_STEP-th pixel that has weight).
 * Returns FALSE if the system became singular or the estimate diverged. */
gboolean
cxr__refine (const Grid *f, const Grid *m, Sim *S, gboolean fixed_scale, int max_iter, double tol)
{
  int n = f->n;
  double c = (n - 1) / 2.0;
  guint np = f->np;
  const float *gx = f->tgx, *gy = f->tgy, *fl = f->tfl, *fw = f->tfw, *ppx = f->tpx, *ppy = f->tpy;
  float *e = g_new (float, MAX (np, 1)), *ae = g_new (float, MAX (np, 1));
  gboolean ok = np >= 100;
  for (int it = 0; ok && it < max_iter; it++)
    {
      /* residuals at the used pixels; NAN where MOVING has no data (lcnv
       * is NAN there, and so is any interpolation that touches it) */
      guint nv = 0, k0 = 0;
#ifdef CXR_HAVE_AVX2
      if (cxr__register_avx2 ())
        k0 = residuals_avx2 (f, m, S, e);
#endif
      for (guint k = k0; k < np; k++)
        {
          double px = ppx[k], py = ppy[k];
          double sx = S->a * px - S->b * py + S->tx + c, sy = S->b * px + S->a * py + S->ty + c;
          gboolean in;
          float v = cxr__bilinear (m->lcnv, n, n, sx, sy, &in);
          e[k] = in ? v - fl[k] : NAN;
        }
      for (guint k = 0; k < np; k++)
        nv += !isnan (e[k]);
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
      double H[4][4] = { { h00, h01, h02, h03 },
                         { h01, h11, h12, h13 },
                         { h02, h12, h22, h23 },
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
