/* SPDX-License-Identifier: MIT
 *
 * Resampling and blurring float images: separable resampling with area
 * (box) weights when shrinking and linear weights when growing, which is
 * what every module that puts a film on a grid uses (cxr__resample,
 * cxr_image_resize); and a Gaussian approximated by three box passes
 * (cxr__blur).
 */
#include <math.h>
#include <string.h>

#include "cxr/image.h"
#include "image-private.h"

/* 1-D resampling weights: area (box) when shrinking, linear when growing.
 * cov[u] is the fraction of the kernel that fell inside the source. */
typedef struct {
  int *start, *len;
  float *w;
  float *cov;
  int maxlen;
} Kernel;

static void
kernel_make (Kernel *kr, int ns, int nd, double k, double cs, double cd)
{
  double half = k < 1 ? 0.5 / k : 1.0;
  kr->maxlen = (int) ceil (2 * half) + 2;
  kr->start = g_new (int, nd);
  kr->len = g_new (int, nd);
  kr->w = g_new0 (float, (gsize) nd * kr->maxlen);
  kr->cov = g_new (float, nd);
  for (int u = 0; u < nd; u++)
    {
      double x = (u - cd) / k + cs;
      int j0 = (int) floor (x - half + 0.5), j1 = (int) floor (x + half + 0.5);
      double tot = 0, in = 0;
      int s = MAX (j0, 0), e = MIN (j1, ns - 1);
      kr->start[u] = s;
      kr->len[u] = MAX (0, MIN (e - s + 1, kr->maxlen));
      for (int j = j0; j <= j1; j++)
        {
          double w;
          if (k < 1)
            w = MAX (0.0, MIN (j + 0.5, x + half) - MAX (j - 0.5, x - half));
          else
            w = MAX (0.0, 1.0 - fabs (x - j));
          tot += w;
          if (j >= s && j <= e && j - s < kr->maxlen)
            {
              kr->w[(gsize) u * kr->maxlen + (j - s)] = (float) w;
              in += w;
            }
        }
      kr->cov[u] = tot > 0 ? (float) (in / tot) : 0.f;
      if (in > 0)
        for (int t = 0; t < kr->len[u]; t++)
          kr->w[(gsize) u * kr->maxlen + t] /= (float) in;
    }
}

static void
kernel_clear (Kernel *kr)
{
  g_free (kr->start);
  g_free (kr->len);
  g_free (kr->w);
  g_free (kr->cov);
}

/* Row @y of the source: @src's own, or @mask's (0 or 1) as floats in
 * @buf, so that a mask is resampled with the same arithmetic as its float
 * copy would be, without the copy (4 MB for a 1024-px film). */
static inline const float *
src_row (const float *src, const guint8 *mask, int w, int y, float *buf)
{
  if (src)
    return src + (gsize) y * w;
  const guint8 *m = mask + (gsize) y * w;
  for (int x = 0; x < w; x++)
    buf[x] = m[x] ? 1.f : 0.f;
  return buf;
}

/* cxr__resample's work, from a float image (@src) or a 0/1 mask. */
static void
resample (const float *src, const guint8 *mask, int w, int h, float *dst, int dw, int dh, double kx,
          double ky, double csx, double csy, double cdx, double cdy, float *cov)
{
  g_autofree float *buf = mask ? g_new (float, w) : NULL;
  int f = dw > 0 ? w / dw : 0;
  if (f >= 2 && f <= 8 && w == f * dw && h == f * dh && kx == 1.0 / f && ky == 1.0 / f
      && csx == (w - 1) / 2.0 && csy == (h - 1) / 2.0 && cdx == (dw - 1) / 2.0
      && cdy == (dh - 1) / 2.0)
    {
      /* An exact integer shrink, centres aligned: the area filter is the
       * mean of each f x f block (the general kernels below give the same
       * weights, 1/f per tap, at several times the cost). */
      float inv = 1.0f / (float) (f * f);
      float *acc = g_new (float, dw);
      for (int v = 0; v < dh; v++)
        {
          memset (acc, 0, sizeof (float) * dw);
          for (int j = 0; j < f; j++)
            {
              const float *a = src_row (src, mask, w, f * v + j, buf);
              if (f == 2)
                for (int u = 0; u < dw; u++)
                  acc[u] += a[2 * u] + a[2 * u + 1];
              else if (f == 4)
                for (int u = 0; u < dw; u++)
                  acc[u] += (a[4 * u] + a[4 * u + 1]) + (a[4 * u + 2] + a[4 * u + 3]);
              else
                for (int u = 0; u < dw; u++)
                  for (int i = 0; i < f; i++)
                    acc[u] += a[f * u + i];
            }
          float *o = dst + (gsize) v * dw;
          for (int u = 0; u < dw; u++)
            o[u] = acc[u] * inv;
        }
      g_free (acc);
      if (cov)
        for (gsize i = 0; i < (gsize) dw * dh; i++)
          cov[i] = 1.f;
      return;
    }
  Kernel kh, kv;
  kernel_make (&kh, w, dw, kx, csx, cdx);
  kernel_make (&kv, h, dh, ky, csy, cdy);
  float *tmp = g_new (float, (gsize) h * dw);
  for (int y = 0; y < h; y++)
    {
      const float *row = src_row (src, mask, w, y, buf);
      float *o = tmp + (gsize) y * dw;
      for (int u = 0; u < dw; u++)
        {
          const float *wt = kh.w + (gsize) u * kh.maxlen;
          const float *s = row + kh.start[u];
          float acc = 0;
          for (int t = 0; t < kh.len[u]; t++)
            acc += wt[t] * s[t];
          o[u] = acc;
        }
    }
  for (int v = 0; v < dh; v++)
    {
      float *o = dst + (gsize) v * dw;
      memset (o, 0, sizeof (float) * dw);
      const float *wt = kv.w + (gsize) v * kv.maxlen;
      for (int t = 0; t < kv.len[v]; t++)
        {
          const float *s = tmp + (gsize) (kv.start[v] + t) * dw;
          for (int u = 0; u < dw; u++)
            o[u] += wt[t] * s[u];
        }
      if (cov)
        for (int u = 0; u < dw; u++)
          cov[(gsize) v * dw + u] = kh.cov[u] * kv.cov[v];
    }
  g_free (tmp);
  kernel_clear (&kh);
  kernel_clear (&kv);
}

/**
 * cxr__resample:
 * Separable resampling: destination pixel (u, v) samples the source at
 * x = (u - cdx) / kx + csx, y = (v - cdy) / ky + csy, with an area (box)
 * filter when shrinking and a linear one when growing. @cov (optional)
 * receives the fraction of each destination pixel's kernel that fell
 * inside the source (1 inside, 0 outside, between at the edges); values
 * are normalised by the covered weight, so edges are not darkened.
 */
void
cxr__resample (const float *src, int w, int h, float *dst, int dw, int dh, double kx, double ky,
               double csx, double csy, double cdx, double cdy, float *cov)
{
  resample (src, NULL, w, h, dst, dw, dh, kx, ky, csx, csy, cdx, cdy, cov);
}

/* cxr__resample of a 0/1 mask (nonzero bytes are 1). */
void
cxr__resample_mask (const guint8 *mask, int w, int h, float *dst, int dw, int dh, double kx,
                    double ky, double csx, double csy, double cdx, double cdy, float *cov)
{
  resample (NULL, mask, w, h, dst, dw, dh, kx, ky, csx, csy, cdx, cdy, cov);
}

/**
 * cxr_image_resize:
 * Resamples @image to @width x @height (area filter when shrinking,
 * linear when growing), stretching each axis independently.
 *
 * Returns: (transfer full): the resized image.
 */
CxrImage *
cxr_image_resize (const CxrImage *image, int width, int height)
{
  CxrImage *out = cxr_image_new (width, height);
  double kx = width / (double) image->width, ky = height / (double) image->height;
  cxr__resample (image->data, image->width, image->height, out->data, width, height, kx, ky,
                 (image->width - 1) / 2.0, (image->height - 1) / 2.0, (width - 1) / 2.0,
                 (height - 1) / 2.0, NULL);
  return out;
}

/* One box pass of radius r along each of n rows (src -> dst, edges
 * clamped). A running sum is a chain of dependent adds; four rows at a
 * time keep four independent chains in flight. */
static void
box_rows (const float *src, float *dst, int w, int n, int r, float inv)
{
  int y = 0;
  for (; y + 4 <= n; y += 4)
    {
      const float *s0 = src + (gsize) y * w, *s1 = s0 + w, *s2 = s1 + w, *s3 = s2 + w;
      float *d0 = dst + (gsize) y * w, *d1 = d0 + w, *d2 = d1 + w, *d3 = d2 + w;
      float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (int i = -r; i <= r; i++)
        {
          int c = CLAMP (i, 0, w - 1);
          a0 += s0[c];
          a1 += s1[c];
          a2 += s2[c];
          a3 += s3[c];
        }
      for (int x = 0; x < w; x++)
        {
          int xa = MIN (x + r + 1, w - 1), xs = MAX (x - r, 0);
          d0[x] = a0 * inv;
          d1[x] = a1 * inv;
          d2[x] = a2 * inv;
          d3[x] = a3 * inv;
          a0 += s0[xa] - s0[xs];
          a1 += s1[xa] - s1[xs];
          a2 += s2[xa] - s2[xs];
          a3 += s3[xa] - s3[xs];
        }
    }
  for (; y < n; y++)
    {
      const float *s = src + (gsize) y * w;
      float *d = dst + (gsize) y * w;
      float a = 0;
      for (int i = -r; i <= r; i++)
        a += s[CLAMP (i, 0, w - 1)];
      for (int x = 0; x < w; x++)
        {
          d[x] = a * inv;
          a += s[MIN (x + r + 1, w - 1)] - s[MAX (x - r, 0)];
        }
    }
}

/* One box pass of radius r down the columns (src -> dst), a row at a
 * time with a row of running sums, so it vectorises across x. */
static void
box_cols (const float *src, float *dst, int w, int h, int r, float inv, float *acc)
{
  memset (acc, 0, sizeof (float) * w);
  for (int i = -r; i <= r; i++)
    {
      const float *s = src + (gsize) CLAMP (i, 0, h - 1) * w;
      for (int x = 0; x < w; x++)
        acc[x] += s[x];
    }
  for (int y = 0; y < h; y++)
    {
      float *d = dst + (gsize) y * w;
      const float *add = src + (gsize) MIN (y + r + 1, h - 1) * w;
      const float *sub = src + (gsize) MAX (y - r, 0) * w;
      for (int x = 0; x < w; x++)
        {
          d[x] = acc[x] * inv;
          acc[x] += add[x] - sub[x];
        }
    }
}

/**
 * cxr__blur:
 * @tmp: scratch of w * h floats
 *
 * Gaussian blur of a w x h image in place, approximated by three box
 * filters of radius r with r(r + 1) = sigma^2 (running sums, edges
 * clamped). The three horizontal passes run on four rows at a time in a
 * small buffer that stays in cache; then the three vertical passes.
 */
void
cxr__blur (float *img, int w, int h, double sigma, float *tmp)
{
  int r = MAX (1, (int) lround (sqrt (sigma * sigma + 0.25) - 0.5));
  float inv = 1.0f / (2 * r + 1);
  float *buf = g_new (float, 8 * (gsize) w);
  for (int y = 0; y < h; y += 4)
    {
      int n = MIN (4, h - y);
      box_rows (img + (gsize) y * w, buf, w, n, r, inv);
      box_rows (buf, buf + 4 * (gsize) w, w, n, r, inv);
      box_rows (buf + 4 * (gsize) w, tmp + (gsize) y * w, w, n, r, inv);
    }
  box_cols (tmp, img, w, h, r, inv, buf);
  box_cols (img, tmp, w, h, r, inv, buf);
  box_cols (tmp, img, w, h, r, inv, buf);
  g_free (buf);
}

/**
 * cxr_image_rotate_180:
 * Returns: (transfer full): @image turned half a turn (a film stored
 * upside down, set right).
 */
CxrImage *
cxr_image_rotate_180 (const CxrImage *image)
{
  CxrImage *out = cxr_image_new (image->width, image->height);
  gsize n = (gsize) image->width * image->height;
  for (gsize i = 0; i < n; i++)
    out->data[i] = image->data[n - 1 - i];
  return out;
}
