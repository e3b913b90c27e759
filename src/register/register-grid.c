/* SPDX-License-Identifier: MIT
 *
 * Registration, the films on grids. Both films are area-resampled onto
 * centred square grids: coarse (default 256 px), mid (half that) and
 * search (a quarter), each at least 64 px, and optionally a fine grid
 * above coarse; with a validity map for padding. Structure, not exposure:
 * the top grid is locally contrast-normalised ((I - mean) / std over a
 * Gaussian of 1/32 of the grid), clamped to +-3, and weighted by a thorax
 * window: a Tukey taper that removes the borders and collimation edges,
 * zero on padding, and zero around saturated pixels (burned-in letters
 * and markers). The coarser grids take the block means of the finer one's
 * structure image and window. Also here: sampling and warping on a grid,
 * and the weighted NCC of two structure images.
 */
#include <math.h>
#include <string.h>

#include "image-private.h"
#include "register-private.h"

static void
grid_clear (Grid *g)
{
  fftwf_free (g->img);
  fftwf_free (g->valid);
  fftwf_free (g->lcn);
  fftwf_free (g->lcnv);
  fftwf_free (g->weight);
  fftwf_free (g->region);
  g_free (g->tpx);
  g_free (g->tpy);
  g_free (g->tfl);
  g_free (g->tfw);
  g_free (g->tgx);
  g_free (g->tgy);
  memset (g, 0, sizeof *g);
}

/* n floats for FFTW, zeroed */
float *
cxr__falloc (gsize n)
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
  g->img = cxr__falloc ((gsize) n * n);
  g->valid = cxr__falloc ((gsize) n * n);
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
  float *in = cxr__falloc (nn);
  float **out[] = { &dst->valid, &dst->lcn, &dst->weight };
  const float *from[] = { src->valid, src->lcn, src->weight };
  dst->n = n;
  dst->k = src->k * r;
  for (int k = 0; k < 3; k++)
    {
      *out[k] = cxr__falloc (nn);
      cxr__resample (from[k], src->n, src->n, *out[k], n, n, r, r, sc, sc, c, c, in);
    }
  fftwf_free (in);
  dst->lcnv = cxr__falloc (nn);
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
  float *tmp = cxr__falloc (nn), *m = cxr__falloc (nn), *mv = cxr__falloc (nn),
        *v = cxr__falloc (nn);
  g->lcn = cxr__falloc (nn);
  g->lcnv = cxr__falloc (nn);
  g->weight = cxr__falloc (nn);

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
        /* the caller's region, else the taper that drops the borders */
        float where = g->region ? g->region[i] : tk[x] * tk[y];
        g->weight[i] = where * inside * marker;
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
  return cxr__bilinear (img, n, n, x, y, in);
}

/* out(p) = src(S p) for p over an n x n grid (0 outside src). */
void
cxr__warp_grid (const float *src, int n, const Sim *S, float *out)
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

/* Weighted NCC of f's structure and m's structure warped by S (grid
 * coordinates, same n), over f's thorax window where m has data: one pass,
 * sums in double, on every step-th pixel of every step-th row (staggered,
 * as refine samples). On the top grid step 2: 16,384 of 65,536 pixels
 * estimate a correlation to within a few thousandths. */
double
cxr__grid_ncc (const Grid *f, const Grid *m, const Sim *S, int step)
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
          float v = bilinear_row (m->lcnv, n, sx + S->a * x, sy + S->b * x, x >= xa && x < xb, &in);
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

/* The grids of one film (see Pyr) and the log-polar spectrum of mid;
 * @region (nullable, any size over the film's extent, 0..1) weights where
 * the films are compared, in place of the border taper. */
void
cxr__pyr_build (Pyr *p, const CxrImage *im, const CxrImage *region, double aspect, int nf, int nc)
{
  memset (p, 0, sizeof *p);
  int top = nf ? nf : nc;
  p->aspect = aspect;
  p->k = top / MAX (im->width, im->height * aspect);
  p->has_fine = nf > 0;
  Grid *t = nf ? &p->fine : &p->coarse;
  grid_resample (t, im->data, im->width, im->height, top, p->k, aspect);
  if (region)
    {
      /* the region covers the film's extent, at its own size */
      double kr = p->k * im->width / region->width;
      double kry = p->k * aspect * im->height / region->height;
      double c = (top - 1) / 2.0;
      t->region = cxr__falloc ((gsize) top * top);
      cxr__resample (region->data, region->width, region->height, t->region, top, top, kr, kry,
                     (region->width - 1) / 2.0, (region->height - 1) / 2.0, c, c, NULL);
    }
  grid_features (t);
  if (nf)
    grid_from_grid (&p->coarse, &p->fine, nc);
  grid_from_grid (&p->mid, &p->coarse, MAX (64, nc / 2));
  grid_from_grid (&p->search, &p->mid, MAX (64, nc / 4));

  const Grid *g = &p->mid;
  gsize nn = (gsize) g->n * g->n;
  float *a = cxr__falloc (nn);
  for (gsize i = 0; i < nn; i++)
    a[i] = g->lcn[i] * g->weight[i];
  p->lp_rmin = 2.0;
  p->lp_dlog = log ((g->n / 2.0 - 1) / p->lp_rmin) / (LP_RADII - 1);
  p->lp = cxr__falloc ((gsize) LP_ANGLES * LP_RADII);
  cxr__log_polar_spectrum (a, g->n, p->lp, p->lp_rmin, p->lp_dlog);
  fftwf_free (a);
}

/* The lung fields' share of each pixel of the top grid (p->lung). */
void
cxr__pyr_set_lungs (Pyr *p, const CxrLungFields *l)
{
  const Grid *t = cxr__pyr_top (p);
  double c = (t->n - 1) / 2.0;
  p->lung = cxr__falloc ((gsize) t->n * t->n);
  cxr__resample_mask (l->mask, l->width, l->height, p->lung, t->n, t->n, p->k, p->k * p->aspect,
                      (l->width - 1) / 2.0, (l->height - 1) / 2.0, c, c, NULL);
}

void
cxr__pyr_clear (Pyr *p)
{
  grid_clear (&p->fine);
  grid_clear (&p->coarse);
  grid_clear (&p->mid);
  grid_clear (&p->search);
  fftwf_free (p->lp);
  fftwf_free (p->lung);
}
