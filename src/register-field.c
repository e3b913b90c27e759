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

/**
 * cxr_deform_field_sample:
 * The field at the points (xs[a], ys[b]) of FIXED (film px), into
 * ux[b * nxs + a] and uy: separably, a row of the lattice at a time.
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
  double *wa = g_new (double, (gsize) nxs * 4);
  for (int a = 0; a < nxs; a++)
    ia[a] = lattice (xs[a], hx, f->nx, wa + 4 * a);
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
      for (int a = 0; a < nxs; a++)
        {
          const double *w = wa + 4 * a;
          const double *px = rx + ia[a], *py = ry + ia[a];
          ox[a] = (float) (w[0] * px[0] + w[1] * px[1] + w[2] * px[2] + w[3] * px[3]);
          oy[a] = (float) (w[0] * py[0] + w[1] * py[1] + w[2] * py[2] + w[3] * py[3]);
        }
    }
  g_free (ia);
  g_free (wa);
}

/* --- fitting ------------------------------------------------------------------ */

/* In-place Cholesky of the n x n symmetric positive definite A, banded:
 * no entry further than @band from the diagonal (so is its factor), and
 * the solution of A x = b for two right-hand sides; FALSE if A is not
 * positive definite. n (band + 1)^2 operations instead of n^3 / 3: a
 * 24 x 24 lattice is 576 unknowns and a band of 75. */
static gboolean
cholesky_solve2 (double *A, int n, int band, double *b1, double *b2)
{
  for (int j = 0; j < n; j++)
    {
      int k0 = MAX (0, j - band);
      double d = A[(gsize) j * n + j];
      for (int k = k0; k < j; k++)
        d -= A[(gsize) j * n + k] * A[(gsize) j * n + k];
      if (!(d > 0))
        return FALSE;
      d = sqrt (d);
      A[(gsize) j * n + j] = d;
      for (int i = j + 1; i <= MIN (n - 1, j + band); i++)
        {
          double s = A[(gsize) i * n + j];
          for (int k = MAX (k0, i - band); k < j; k++)
            s -= A[(gsize) i * n + k] * A[(gsize) j * n + k];
          A[(gsize) i * n + j] = s / d;
        }
    }
  double *bs[2] = { b1, b2 };
  for (int r = 0; r < 2; r++)
    {
      double *b = bs[r];
      for (int i = 0; i < n; i++)
        {
          double s = b[i];
          for (int k = MAX (0, i - band); k < i; k++)
            s -= A[(gsize) i * n + k] * b[k];
          b[i] = s / A[(gsize) i * n + i];
        }
      for (int i = n - 1; i >= 0; i--)
        {
          double s = b[i];
          for (int k = i + 1; k <= MIN (n - 1, i + band); k++)
            s -= A[(gsize) k * n + i] * b[k];
          b[i] = s / A[(gsize) i * n + i];
        }
    }
  return TRUE;
}

/* Adds lambda * r r^T for the difference stencil r (up to 4 taps). */
static void
add_stencil (double *A, int n, const int *idx, const double *val, int taps, double lambda)
{
  for (int a = 0; a < taps; a++)
    for (int b = 0; b < taps; b++)
      A[(gsize) idx[a] * n + idx[b]] += lambda * val[a] * val[b];
}

/* The field (f->nx, f->ny set) that best fits the targets under the
 * bending penalty @lambda, pulled gently towards its current coefficients
 * (so that where a finer level finds no block, the coarser one's field
 * stays). */
gboolean
cxr__fit_field (CxrDeformField *f, int fw, int fh, const CxrFieldTarget *t, int nt, double lambda)
{
  int nx = f->nx, ny = f->ny, n = nx * ny;
  double hx, hy;
  steps (f, fw, fh, &hx, &hy);
  g_autofree double *A = g_new0 (double, (gsize) n * n);
  g_autofree double *bx = g_new0 (double, n), *by = g_new0 (double, n);
  for (int k = 0; k < nt; k++)
    {
      double wx[4], wy[4], v[16];
      int idx[16];
      int i = lattice (t[k].x, hx, nx, wx), j = lattice (t[k].y, hy, ny, wy);
      for (int q = 0; q < 4; q++)
        for (int p = 0; p < 4; p++)
          {
            idx[q * 4 + p] = (j + q) * nx + i + p;
            v[q * 4 + p] = wy[q] * wx[p];
          }
      add_stencil (A, n, idx, v, 16, t[k].w);
      for (int a = 0; a < 16; a++)
        {
          bx[idx[a]] += t[k].w * v[a] * t[k].tx;
          by[idx[a]] += t[k].w * v[a] * t[k].ty;
        }
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
            add_stencil (A, n, idx, val, 3, lambda);
          }
        if (j > 0 && j < ny - 1)
          {
            int idx[3] = { c - nx, c, c + nx };
            double val[3] = { 1, -2, 1 };
            add_stencil (A, n, idx, val, 3, lambda);
          }
        if (i < nx - 1 && j < ny - 1)
          {
            int idx[4] = { c, c + 1, c + nx, c + nx + 1 };
            double val[4] = { 1, -1, -1, 1 };
            add_stencil (A, n, idx, val, 4, 2 * lambda);
          }
        double ridge = 0.02 * lambda + 1e-9;
        A[(gsize) c * n + c] += ridge;
        bx[c] += ridge * f->ux[c];
        by[c] += ridge * f->uy[c];
      }
  /* a point's 4 x 4 support and the stencils reach 3 rows and 3 columns of
   * the lattice away */
  if (!cholesky_solve2 (A, n, 3 * nx + 3, bx, by))
    return FALSE;
  for (int c = 0; c < n; c++)
    {
      f->ux[c] = (float) bx[c];
      f->uy[c] = (float) by[c];
    }
  return TRUE;
}
