/* SPDX-License-Identifier: MIT
 *
 * Registration, the deformable stage's field (register.h): a uniform
 * cubic B-spline over FIXED's pixels, evaluated at a point or separably
 * over a grid, and fitted to block displacements by weighted least squares
 * under a bending penalty (the discrete thin-plate energy of the lattice:
 * second differences along x and y, and mixed ones twice) with a weak pull
 * towards its current coefficients, solved by a banded Cholesky
 * factorisation. register-deform.c finds the displacements.
 */
#include <math.h>
#include <string.h>

#include "register-private.h"

/* --- the B-spline field ----------------------------------------------------- */

/* Uniform cubic B-spline weights of the four control points around
 * fraction t of a lattice cell. */
static inline void
bspline4 (double t, double w[4])
{
  double u = 1 - t, t2 = t * t, t3 = t2 * t;
  w[0] = u * u * u / 6;
  w[1] = (3 * t3 - 6 * t2 + 4) / 6;
  w[2] = (-3 * t3 + 3 * t2 + 3 * t + 1) / 6;
  w[3] = t3 / 6;
}

/* The first of the four control points (along one axis) that act at
 * film coordinate @x (lattice step @h, @n points) and its weights; beyond
 * the film the field is that at its edge. */
static inline int
lattice (double x, double h, int n, double w[4])
{
  double s = CLAMP (x / h, 0.0, (double) (n - 3));
  int i = MIN ((int) s, n - 4);
  bspline4 (s - i, w);
  return i;
}

static void
steps (const CxrDeformField *f, int fw, int fh, double *hx, double *hy)
{
  *hx = MAX (fw - 1, 1) / (double) (f->nx - 3);
  *hy = MAX (fh - 1, 1) / (double) (f->ny - 3);
}

/**
 * cxr_deform_field_at:
 * The displacement u (FIXED px) of @field at point (@x, @y) of a
 * @fixed_w x @fixed_h FIXED film; 0 when the field is empty.
 */
void
cxr_deform_field_at (const CxrDeformField *f, int fw, int fh, double x, double y, double *ux,
                     double *uy)
{
  *ux = *uy = 0;
  if (f->nx < 4 || f->ny < 4)
    return;
  double hx, hy, wx[4], wy[4];
  steps (f, fw, fh, &hx, &hy);
  int i = lattice (x, hx, f->nx, wx), j = lattice (y, hy, f->ny, wy);
  for (int q = 0; q < 4; q++)
    for (int p = 0; p < 4; p++)
      {
        int c = (j + q) * f->nx + i + p;
        *ux += wy[q] * wx[p] * f->ux[c];
        *uy += wy[q] * wx[p] * f->uy[c];
      }
}

#ifdef CXR_HAVE_AVX2
/* One row's outputs a0 .. a1 - 1, all in lattice cell @px / @py (its four
 * values), four at a time: the same products and sums in the same order
 * as the scalar loop, so the same bits. Returns where it stopped. */
__attribute__ ((target ("avx2"))) static int
sample_run_avx2 (const double *const wv[4], int a0, int a1, const double *px, const double *py,
                 float *ox, float *oy)
{
  __m256d x0 = _mm256_set1_pd (px[0]), x1 = _mm256_set1_pd (px[1]);
  __m256d x2 = _mm256_set1_pd (px[2]), x3 = _mm256_set1_pd (px[3]);
  __m256d y0 = _mm256_set1_pd (py[0]), y1 = _mm256_set1_pd (py[1]);
  __m256d y2 = _mm256_set1_pd (py[2]), y3 = _mm256_set1_pd (py[3]);
  int a = a0;
  for (; a + 4 <= a1; a += 4)
    {
      __m256d w0 = _mm256_loadu_pd (wv[0] + a), w1 = _mm256_loadu_pd (wv[1] + a);
      __m256d w2 = _mm256_loadu_pd (wv[2] + a), w3 = _mm256_loadu_pd (wv[3] + a);
      __m256d sx = _mm256_add_pd (
          _mm256_add_pd (_mm256_add_pd (_mm256_mul_pd (w0, x0), _mm256_mul_pd (w1, x1)),
                         _mm256_mul_pd (w2, x2)),
          _mm256_mul_pd (w3, x3));
      __m256d sy = _mm256_add_pd (
          _mm256_add_pd (_mm256_add_pd (_mm256_mul_pd (w0, y0), _mm256_mul_pd (w1, y1)),
                         _mm256_mul_pd (w2, y2)),
          _mm256_mul_pd (w3, y3));
      _mm_storeu_ps (ox + a, _mm256_cvtpd_ps (sx));
      _mm_storeu_ps (oy + a, _mm256_cvtpd_ps (sy));
    }
  return a;
}
#endif

/**
 * cxr_deform_field_sample:
 * The field at the points (xs[a], ys[b]) of FIXED (film px), into
 * ux[b * nxs + a] and uy: separably, a row of the lattice at a time, and
 * along a row a run of points in one lattice cell at a time.
 */
void
cxr_deform_field_sample (const CxrDeformField *f, int fw, int fh, const double *xs, int nxs,
                         const double *ys, int nys, float *ux, float *uy)
{
  if (f->nx < 4 || f->ny < 4)
    {
      memset (ux, 0, sizeof (float) * nxs * nys);
      memset (uy, 0, sizeof (float) * nxs * nys);
      return;
    }
  double hx, hy;
  steps (f, fw, fh, &hx, &hy);
  int *ia = g_new (int, nxs);
  /* each point's four weights, one array per weight */
  double *wa = g_new (double, (gsize) nxs * 4);
  const double *const wv[4] = { wa, wa + nxs, wa + 2 * (gsize) nxs, wa + 3 * (gsize) nxs };
  for (int a = 0; a < nxs; a++)
    {
      double w[4];
      ia[a] = lattice (xs[a], hx, f->nx, w);
      for (int k = 0; k < 4; k++)
        wa[(gsize) k * nxs + a] = w[k];
    }
#ifdef CXR_HAVE_AVX2
  gboolean wide = cxr__register_avx2 ();
#endif
  double rx[CXR_DEFORM_MAX], ry[CXR_DEFORM_MAX];
  for (int b = 0; b < nys; b++)
    {
      double wy[4];
      int j = lattice (ys[b], hy, f->ny, wy);
      for (int i = 0; i < f->nx; i++)
        {
          rx[i] = ry[i] = 0;
          for (int q = 0; q < 4; q++)
            {
              rx[i] += wy[q] * f->ux[(j + q) * f->nx + i];
              ry[i] += wy[q] * f->uy[(j + q) * f->nx + i];
            }
        }
      float *ox = ux + (gsize) b * nxs, *oy = uy + (gsize) b * nxs;
      for (int a0 = 0, a1; a0 < nxs; a0 = a1)
        {
          const double *px = rx + ia[a0], *py = ry + ia[a0];
          for (a1 = a0 + 1; a1 < nxs && ia[a1] == ia[a0]; a1++)
            ;
          int a = a0;
#ifdef CXR_HAVE_AVX2
          if (wide)
            a = sample_run_avx2 (wv, a0, a1, px, py, ox, oy);
#endif
          for (; a < a1; a++)
            {
              double w0 = wv[0][a], w1 = wv[1][a], w2 = wv[2][a], w3 = wv[3][a];
              ox[a] = (float) (w0 * px[0] + w1 * px[1] + w2 * px[2] + w3 * px[3]);
              oy[a] = (float) (w0 * py[0] + w1 * py[1] + w2 * py[2] + w3 * py[3]);
            }
        }
    }
  g_free (ia);
  g_free (wa);
}

/* --- fitting ------------------------------------------------------------------ */

/* The band of a symmetric n x n matrix with no entry further than band
 * from the diagonal: its lower triangle by columns, column k holding rows
 * k .. k + band (band + 1 doubles a column; the last columns' trailing
 * entries unused), so that the rows of one column the factorisation
 * updates together are adjacent. 576 unknowns and a band of 75 are 350 KB
 * instead of 2.6 MB. */
typedef struct {
  double *a;
  int n, band;
} Band;

#define BAND_AT(B, i, k) ((B)->a[(gsize) (k) * ((B)->band + 1) + (i) - (k)])

/* Rows @i .. @i + @nr - 1 of column @j of the factor (column k0 .. j - 1
 * done, the diagonal @d): each row's sum runs over k in order, from its
 * own first column in the band, as it would alone. */
static void
column_rows (Band *A, int j, int i, int nr, int k0, double d)
{
  int band = A->band;
  for (int r = 0; r < nr; r++)
    {
      double s = BAND_AT (A, i + r, j);
      for (int k = MAX (k0, i + r - band); k < j; k++)
        s -= BAND_AT (A, i + r, k) * BAND_AT (A, j, k);
      BAND_AT (A, i + r, j) = s / d;
    }
}

#ifdef CXR_HAVE_AVX2
/* column_rows for @nr <= 16 rows at once, a lane a row (the rows of a
 * column are adjacent), four vectors, so four chains of subtractions
 * overlap; lanes past @nr are computed and not stored back. Each lane the
 * scalar row's products and subtractions in its order, no fused
 * multiply-adds: the same bits. A 24 x 24 field's fit (576 unknowns, band
 * 75; with its solve, the field on the grid and the folds) went 0.8 ->
 * 0.5 ms a level. */
__attribute__ ((target ("avx2"))) static void
column_rows16_avx2 (Band *A, int j, int i, int nr, int k0, double d)
{
  int band = A->band;
  double s[16];
  int ks[16];
  for (int r = 0; r < 16; r++)
    {
      s[r] = BAND_AT (A, i + r, j);
      ks[r] = MAX (k0, i + r - band);
    }
  __m256d v0 = _mm256_loadu_pd (s), v1 = _mm256_loadu_pd (s + 4);
  __m256d v2 = _mm256_loadu_pd (s + 8), v3 = _mm256_loadu_pd (s + 12);
  /* before the 16th row's first column, a lane whose row has not begun
   * (k < i + r - band) reads past its column's band and its product is
   * masked to +0, which leaves its sum's bits as they are */
  const __m256d r0 = _mm256_setr_pd (0, 1, 2, 3), r1 = _mm256_setr_pd (4, 5, 6, 7);
  const __m256d r2 = _mm256_setr_pd (8, 9, 10, 11), r3 = _mm256_setr_pd (12, 13, 14, 15);
  for (int k = ks[0]; k < ks[15] && k < j; k++)
    {
      const double *c = &BAND_AT (A, i, k);
      __m256d b = _mm256_broadcast_sd (&BAND_AT (A, j, k));
      __m256d t = _mm256_set1_pd (k - i + band);
      v0 = _mm256_sub_pd (v0, _mm256_and_pd (_mm256_mul_pd (_mm256_loadu_pd (c), b),
                                             _mm256_cmp_pd (r0, t, _CMP_LE_OQ)));
      v1 = _mm256_sub_pd (v1, _mm256_and_pd (_mm256_mul_pd (_mm256_loadu_pd (c + 4), b),
                                             _mm256_cmp_pd (r1, t, _CMP_LE_OQ)));
      v2 = _mm256_sub_pd (v2, _mm256_and_pd (_mm256_mul_pd (_mm256_loadu_pd (c + 8), b),
                                             _mm256_cmp_pd (r2, t, _CMP_LE_OQ)));
      v3 = _mm256_sub_pd (v3, _mm256_and_pd (_mm256_mul_pd (_mm256_loadu_pd (c + 12), b),
                                             _mm256_cmp_pd (r3, t, _CMP_LE_OQ)));
    }
  for (int k = MAX (ks[0], ks[15]); k < j; k++)
    {
      const double *c = &BAND_AT (A, i, k);
      __m256d b = _mm256_broadcast_sd (&BAND_AT (A, j, k));
      v0 = _mm256_sub_pd (v0, _mm256_mul_pd (_mm256_loadu_pd (c), b));
      v1 = _mm256_sub_pd (v1, _mm256_mul_pd (_mm256_loadu_pd (c + 4), b));
      v2 = _mm256_sub_pd (v2, _mm256_mul_pd (_mm256_loadu_pd (c + 8), b));
      v3 = _mm256_sub_pd (v3, _mm256_mul_pd (_mm256_loadu_pd (c + 12), b));
    }
  /* divided in lanes: IEEE division rounds each the same */
  const __m256d dd = _mm256_set1_pd (d);
  _mm256_storeu_pd (s, _mm256_div_pd (v0, dd));
  _mm256_storeu_pd (s + 4, _mm256_div_pd (v1, dd));
  _mm256_storeu_pd (s + 8, _mm256_div_pd (v2, dd));
  _mm256_storeu_pd (s + 12, _mm256_div_pd (v3, dd));
  _mm256_zeroupper ();
  memcpy (&BAND_AT (A, i, j), s, sizeof (double) * nr);
}
#endif

/* In-place Cholesky of the symmetric positive definite @A; FALSE if A is
 * not positive definite. n (band + 1)^2 operations instead of n^3 / 3. */
static gboolean
cholesky_factor (Band *A)
{
  int n = A->n, band = A->band;
#ifdef CXR_HAVE_AVX2
  gboolean wide = cxr__register_avx2 ();
#endif
  for (int j = 0; j < n; j++)
    {
      int k0 = MAX (0, j - band);
      double d = BAND_AT (A, j, j);
      for (int k = k0; k < j; k++)
        d -= BAND_AT (A, j, k) * BAND_AT (A, j, k);
      if (!(d > 0))
        return FALSE;
      d = sqrt (d);
      BAND_AT (A, j, j) = d;
      /* column j below the diagonal */
      int i1 = MIN (n - 1, j + band), i = j + 1;
#ifdef CXR_HAVE_AVX2
      if (wide)
        for (; i <= i1; i += 16)
          column_rows16_avx2 (A, j, i, MIN (16, i1 - i + 1), k0, d);
#endif
      column_rows (A, j, i, i1 - i + 1, k0, d);
    }
  return TRUE;
}

/* The solution of L L^T x = b for two right-hand sides, with @A holding
 * the factor L (cholesky_factor); both sides together (independent sums,
 * as above). */
static void
cholesky_solve2 (const Band *A, double *b1, double *b2)
{
  int n = A->n, band = A->band;
  for (int i = 0; i < n; i++)
    {
      double s1 = b1[i], s2 = b2[i];
      for (int k = MAX (0, i - band); k < i; k++)
        {
          s1 -= BAND_AT (A, i, k) * b1[k];
          s2 -= BAND_AT (A, i, k) * b2[k];
        }
      b1[i] = s1 / BAND_AT (A, i, i);
      b2[i] = s2 / BAND_AT (A, i, i);
    }
  for (int i = n - 1; i >= 0; i--)
    {
      double s1 = b1[i], s2 = b2[i];
      for (int k = i + 1; k <= MIN (n - 1, i + band); k++)
        {
          s1 -= BAND_AT (A, k, i) * b1[k];
          s2 -= BAND_AT (A, k, i) * b2[k];
        }
      b1[i] = s1 / BAND_AT (A, i, i);
      b2[i] = s2 / BAND_AT (A, i, i);
    }
}

/* Adds lambda * r r^T for the difference stencil r (up to 16 taps; every
 * pair of taps within the band). */
static void
add_stencil (Band *A, const int *idx, const double *val, int taps, double lambda)
{
  for (int a = 0; a < taps; a++)
    for (int b = 0; b < taps; b++)
      if (idx[b] <= idx[a])
        BAND_AT (A, idx[a], idx[b]) += lambda * val[a] * val[b];
}

/* Target @t's 16 lattice points and their B-spline weights. */
static void
target_support (const CxrFieldTarget *t, int nx, int ny, double hx, double hy, int idx[16],
                double v[16])
{
  double wx[4], wy[4];
  int i = lattice (t->x, hx, nx, wx), j = lattice (t->y, hy, ny, wy);
  for (int q = 0; q < 4; q++)
    for (int p = 0; p < 4; p++)
      {
        idx[q * 4 + p] = (j + q) * nx + i + p;
        v[q * 4 + p] = wy[q] * wx[p];
      }
}

/* The normal equations' matrix of a fit to targets at @t's places and
 * weights under the bending penalty @lambda, and the gentle pull towards
 * the current coefficients (fit_rhs adds its other side). */
static void
fit_matrix (Band *A, int nx, int ny, double hx, double hy, const CxrFieldTarget *t, int nt,
            double lambda)
{
  for (int k = 0; k < nt; k++)
    {
      double v[16];
      int idx[16];
      target_support (&t[k], nx, ny, hx, hy, idx, v);
      add_stencil (A, idx, v, 16, t[k].w);
    }
  /* bending: second differences along x, along y (each weight 1) and
   * mixed (weight 2), the discrete thin-plate energy of the lattice */
  for (int j = 0; j < ny; j++)
    for (int i = 0; i < nx; i++)
      {
        int c = j * nx + i;
        if (i > 0 && i < nx - 1)
          {
            int idx[3] = { c - 1, c, c + 1 };
            double val[3] = { 1, -2, 1 };
            add_stencil (A, idx, val, 3, lambda);
          }
        if (j > 0 && j < ny - 1)
          {
            int idx[3] = { c - nx, c, c + nx };
            double val[3] = { 1, -2, 1 };
            add_stencil (A, idx, val, 3, lambda);
          }
        if (i < nx - 1 && j < ny - 1)
          {
            int idx[4] = { c, c + 1, c + nx, c + nx + 1 };
            double val[4] = { 1, -1, -1, 1 };
            add_stencil (A, idx, val, 4, 2 * lambda);
          }
        BAND_AT (A, c, c) += 0.02 * lambda + 1e-9;
      }
}

/* The right-hand sides to fit_matrix: the targets' displacements, and
 * the pull towards @f's current coefficients. */
static void
fit_rhs (double *bx, double *by, const CxrDeformField *f, double hx, double hy,
         const CxrFieldTarget *t, int nt, double lambda)
{
  int nx = f->nx, ny = f->ny;
  for (int k = 0; k < nt; k++)
    {
      double v[16];
      int idx[16];
      target_support (&t[k], nx, ny, hx, hy, idx, v);
      for (int a = 0; a < 16; a++)
        {
          bx[idx[a]] += t[k].w * v[a] * t[k].tx;
          by[idx[a]] += t[k].w * v[a] * t[k].ty;
        }
    }
  double ridge = 0.02 * lambda + 1e-9;
  for (int c = 0; c < nx * ny; c++)
    {
      bx[c] += ridge * f->ux[c];
      by[c] += ridge * f->uy[c];
    }
}

/* The field (f->nx, f->ny set) that best fits the targets under the
 * bending penalty @lambda, pulled gently towards its current coefficients
 * (so that where a finer level finds no block, the coarser one's field
 * stays). */
gboolean
cxr__fit_field (CxrDeformField *f, int fw, int fh, const CxrFieldTarget *t, int nt, double lambda)
{
  g_autoptr (CxrFieldFit) ff = cxr__field_fit_new (f->nx, f->ny, fw, fh, t, nt, lambda);
  if (ff == NULL)
    return FALSE;
  cxr__field_fit_solve (ff, t, f);
  return TRUE;
}

struct _CxrFieldFit {
  Band A; /* factored */
  int nt;
  double hx, hy, lambda;
};

/**
 * cxr__field_fit_new:
 * The fit of an @nx x @ny field of a @fw x @fh film to targets at @t's
 * places with @t's weights, factored once, for solves whose targets keep
 * those places and weights and change only their displacements
 * (cxr__field_fit_solve).
 *
 * Returns: (transfer full): the fit; %NULL when its equations are singular.
 */
CxrFieldFit *
cxr__field_fit_new (int nx, int ny, int fw, int fh, const CxrFieldTarget *t, int nt, double lambda)
{
  CxrFieldFit *ff = g_new0 (CxrFieldFit, 1);
  CxrDeformField shape = { nx, ny };
  steps (&shape, fw, fh, &ff->hx, &ff->hy);
  /* a point's 4 x 4 support and the stencils reach 3 rows and 3 columns of
   * the lattice away */
  int n = nx * ny;
  /* 16 more: column_rows16_avx2 reads up to 15 past a column's band */
  ff->A = (Band){ g_new0 (double, (gsize) n * (3 * nx + 3 + 1) + 16), n, 3 * nx + 3 };
  ff->nt = nt;
  ff->lambda = lambda;
  fit_matrix (&ff->A, nx, ny, ff->hx, ff->hy, t, nt, lambda);
  if (!cholesky_factor (&ff->A))
    {
      cxr__field_fit_free (ff);
      return NULL;
    }
  return ff;
}

/* @f (its nx, ny those of @ff) becomes the fit to @t: @ff's targets, in
 * its order, with their displacements now. */
void
cxr__field_fit_solve (const CxrFieldFit *ff, const CxrFieldTarget *t, CxrDeformField *f)
{
  int n = ff->A.n;
  g_autofree double *bx = g_new0 (double, n), *by = g_new0 (double, n);
  fit_rhs (bx, by, f, ff->hx, ff->hy, t, ff->nt, ff->lambda);
  cholesky_solve2 (&ff->A, bx, by);
  for (int c = 0; c < n; c++)
    {
      f->ux[c] = (float) bx[c];
      f->uy[c] = (float) by[c];
    }
}

void
cxr__field_fit_free (CxrFieldFit *ff)
{
  if (ff == NULL)
    return;
  g_free (ff->A.a);
  g_free (ff);
}
