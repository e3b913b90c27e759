/* SPDX-License-Identifier: MIT
 *
 * The layers the CNN runtime is built from (nn-private.h): convolutions
 * as matrix products (OpenBLAS cblas_sgemm, or cxrtrack's own product on
 * CPUs with AVX-512, sgemm.c), a 1x1 convolution directly on the feature
 * map and larger kernels after im2col; batch norm as a per-channel scale
 * and shift, folded into the convolution before it or fused with the ReLU
 * after it; and the loading of their tensors from a safetensors file,
 * each checked against the shape the architecture wants, naming the file
 * and tensor when it is not.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cxr/error.h"
#include "nn-private.h"
#include "sgemm-private.h"

void
cxr__conv_clear (CxrConv *c)
{
  g_clear_pointer (&c->w, g_free);
  g_clear_pointer (&c->b, g_free);
  g_clear_pointer (&c->wp, g_aligned_free);
}

/* After folding: the weights as cxrtrack's own matrix product wants them,
 * where it is used (sgemm.c). */
void
cxr__conv_pack (CxrConv *c)
{
  if (cxr__sgemm_own ())
    {
      c->wp = cxr__sgemm_pack_a (c->w, c->co, c->ci * c->k * c->k);
      g_clear_pointer (&c->w, g_free); /* only the BLAS path reads it */
    }
}

void
cxr__affine_clear (CxrAffine *a)
{
  g_clear_pointer (&a->scale, g_free);
  g_clear_pointer (&a->shift, g_free);
}

/* A tensor of exactly the given shape, as floats (NULL and error if not). */
float *
cxr__take (CxrTensorLoader *ld, const char *name, int ndim, const gint64 *shape, GError **error)
{
  const CxrTensorInfo *t = cxr_safetensors_get (ld->st, name);
  GString *want = g_string_new ("[");
  for (int i = 0; i < ndim; i++)
    g_string_append_printf (want, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_c (want, ']');
  if (t == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL, "%s: missing tensor '%s' %s", ld->path, name,
                   want->str);
      g_string_free (want, TRUE);
      return NULL;
    }
  gboolean same = t->ndim == ndim;
  for (int i = 0; same && i < ndim; i++)
    same = t->shape[i] == shape[i];
  if (!same)
    {
      GString *got = g_string_new ("[");
      for (int i = 0; i < t->ndim; i++)
        g_string_append_printf (got, "%s%" G_GINT64_FORMAT, i ? ", " : "", t->shape[i]);
      g_string_append_c (got, ']');
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL, "%s: tensor '%s' has shape %s, want %s",
                   ld->path, name, got->str, want->str);
      g_string_free (got, TRUE);
      g_string_free (want, TRUE);
      return NULL;
    }
  g_string_free (want, TRUE);
  float *v = g_new (float, MAX (t->numel, 1));
  cxr_safetensors_read_f32 (ld->st, t, v);
  /* a weight that is not a number poisons every output: refuse it here,
   * not as a NaN probability in the store */
  for (gsize i = 0; i < t->numel; i++)
    if (!isfinite (v[i]))
      {
        g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                     "%s: tensor '%s' holds %s at element %" G_GSIZE_FORMAT, ld->path, name,
                     isnan (v[i]) ? "NaN" : "an infinite value", i);
        g_free (v);
        return NULL;
      }
  g_hash_table_add (ld->used, (gpointer) t->name);
  return v;
}

gboolean
cxr__take_bn (CxrTensorLoader *ld, const char *prefix, int c, CxrAffine *out, GError **error)
{
  gint64 sh[1] = { c };
  const char *parts[] = { "weight", "bias", "running_mean", "running_var" };
  float *v[4] = { 0 };
  for (int i = 0; i < 4; i++)
    {
      g_autofree char *n = g_strdup_printf ("%s.%s", prefix, parts[i]);
      v[i] = cxr__take (ld, n, 1, sh, error);
      if (v[i] == NULL)
        {
          for (int j = 0; j < i; j++)
            g_free (v[j]);
          return FALSE;
        }
    }
  out->c = c;
  out->scale = g_new (float, c);
  out->shift = g_new (float, c);
  for (int i = 0; i < c; i++)
    {
      /* torch's BatchNorm2d default eps */
      double s = v[0][i] / sqrt ((double) v[3][i] + 1e-5);
      out->scale[i] = (float) s;
      out->shift[i] = (float) (v[1][i] - v[2][i] * s);
    }
  for (int i = 0; i < 4; i++)
    g_free (v[i]);
  return TRUE;
}

gboolean
cxr__take_conv (CxrTensorLoader *ld, const char *name, int ci, int co, int k, int stride, int pad,
                CxrConv *out, GError **error)
{
  gint64 sh[4] = { co, ci, k, k };
  out->w = cxr__take (ld, name, 4, sh, error);
  out->ci = ci;
  out->co = co;
  out->k = k;
  out->stride = stride;
  out->pad = pad;
  return out->w != NULL;
}

/* conv followed by batch norm -> one conv with bias */
void
cxr__fold (CxrConv *c, const CxrAffine *bn)
{
  gsize per = (gsize) c->ci * c->k * c->k;
  c->b = g_new (float, c->co);
  for (int o = 0; o < c->co; o++)
    {
      for (gsize i = 0; i < per; i++)
        c->w[o * per + i] *= bn->scale[o];
      c->b[o] = bn->shift[o];
    }
}

/* out (c x hw) = relu(scale * in + shift), per channel */
void
cxr__affine_relu (const CxrAffine *a, const float *in, gsize hw, float *out)
{
  for (int ch = 0; ch < a->c; ch++)
    {
      const float s = a->scale[ch], t = a->shift[ch];
      const float *x = in + ch * hw;
      float *y = out + ch * hw;
      for (gsize i = 0; i < hw; i++)
        {
          float v = s * x[i] + t;
          y[i] = v > 0 ? v : 0;
        }
    }
}

/* The columns of output rows y0..y1-1: col is ci k k x (y1 - y0) ow. */
static void
im2col (const float *in, int ci, int h, int w, int k, int stride, int pad, int y0, int y1, int ow,
        float *col)
{
  for (int c = 0; c < ci; c++)
    for (int ky = 0; ky < k; ky++)
      for (int kx = 0; kx < k; kx++)
        {
          float *dst = col + ((gsize) (c * k + ky) * k + kx) * (y1 - y0) * ow;
          /* output columns whose input column ix = x stride - pad + kx is inside */
          int x0 = 0, x1 = ow;
          while (x0 < ow && x0 * stride - pad + kx < 0)
            x0++;
          while (x1 > x0 && (x1 - 1) * stride - pad + kx >= w)
            x1--;
          for (int y = y0; y < y1; y++)
            {
              int iy = y * stride - pad + ky;
              float *d = dst + (gsize) (y - y0) * ow;
              if (iy < 0 || iy >= h)
                {
                  memset (d, 0, sizeof (float) * ow);
                  continue;
                }
              const float *src = in + ((gsize) c * h + iy) * w - pad + kx;
              /* the padding is a column or three: plain loops, not calls */
              for (int x = 0; x < x0; x++)
                d[x] = 0;
              if (stride == 1)
                memcpy (d + x0, src + x0, sizeof (float) * (x1 - x0));
              else
                for (int x = x0; x < x1; x++)
                  d[x] = src[x * stride];
              for (int x = x1; x < ow; x++)
                d[x] = 0;
            }
        }
}

/* out (co x oh ow) = conv(in); col is scratch of ci k k oh ow floats. */
void
cxr__conv_forward (const CxrConv *c, const float *in, int h, int w, float *out, float *col,
                   gboolean relu)
{
  int oh = (h + 2 * c->pad - c->k) / c->stride + 1, ow = (w + 2 * c->pad - c->k) / c->stride + 1;
  int n = oh * ow, kk = c->ci * c->k * c->k;
  const float *b = in;
  if (c->wp && c->k > 1 && c->k <= CXR_CONV_MAX_K && c->stride == 1 && h == w && oh == ow)
    {
      /* no im2col: the product packs its panels from the input itself */
      CxrConvInput x = { in, c->ci, h, w, c->k, c->pad };
      cxr__sgemm_conv (c->co, c->wp, &x, out);
      goto epilogue;
    }
  if (c->k == 1 && c->stride == 1 && c->pad == 0)
    {
      if (c->wp)
        cxr__sgemm_packed (c->co, n, kk, c->wp, b, n, out, n);
      else
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, c->co, n, kk, 1.0f, c->w, kk, b, n,
                     0.0f, out, n);
    }
  else if (c->wp)
    {
      im2col (in, c->ci, h, w, c->k, c->stride, c->pad, 0, oh, ow, col);
      cxr__sgemm_packed (c->co, n, kk, c->wp, col, n, out, n);
    }
  else
    {
      /* columns over 10 MB (the lung network's two first levels: 21
       * and 11 MB, touched once and paid for in page faults by every
       * process that segments one film) come a band of output rows at a
       * time, about 4 MB each; smaller ones whole (the classifier's, at
       * most 9.4 MB: its outputs stay what they were, to the bit) */
      int rows = (gsize) kk * n <= 2500000
                     ? oh
                     : (int) CLAMP ((1 << 20) / ((gsize) kk * ow), 1, (gsize) oh);
      for (int y0 = 0; y0 < oh; y0 += rows)
        {
          int y1 = MIN (oh, y0 + rows), nb = (y1 - y0) * ow;
          im2col (in, c->ci, h, w, c->k, c->stride, c->pad, y0, y1, ow, col);
          cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, c->co, nb, kk, 1.0f, c->w, kk,
                       col, nb, 0.0f, out + (gsize) y0 * ow, n);
        }
    }
epilogue:
  if (c->b || relu)
    for (int o = 0; o < c->co; o++)
      {
        const float bias = c->b ? c->b[o] : 0.f;
        float *y = out + (gsize) o * n;
        if (relu)
          for (int i = 0; i < n; i++)
            {
              float v = y[i] + bias;
              y[i] = v > 0 ? v : 0;
            }
        else
          for (int i = 0; i < n; i++)
            y[i] += bias;
      }
}

/* 2x2 max pooling of c maps of n x n (n even). */
void
cxr__max_pool2 (const float *in, int c, int n, float *out)
{
  int h = n / 2;
  for (int ch = 0; ch < c; ch++)
    for (int y = 0; y < h; y++)
      {
        const float *a = in + ((gsize) ch * n + 2 * y) * n, *b = a + n;
        float *o = out + ((gsize) ch * h + y) * h;
        for (int x = 0; x < h; x++)
          o[x] = MAX (MAX (a[2 * x], a[2 * x + 1]), MAX (b[2 * x], b[2 * x + 1]));
      }
}

/* Bilinear doubling of c maps of n x n to 2n x 2n, as PyTorch's
 * interpolate (scale_factor 2, align_corners=False): output pixel i
 * samples the input at (i + 0.5) / 2 - 0.5, clamped to the edges. Each
 * output pixel is 3/4 of its nearer input pixel and 1/4 of the next. */
void
cxr__upsample2 (const float *in, int c, int n, float *out)
{
  int m = 2 * n;
  for (int ch = 0; ch < c; ch++)
    {
      const float *src = in + (gsize) ch * n * n;
      float *dst = out + (gsize) ch * m * m;
      for (int oy = 0; oy < m; oy++)
        {
          int y0 = oy / 2, y1 = oy & 1 ? MIN (y0 + 1, n - 1) : MAX (y0 - 1, 0);
          const float *r0 = src + (gsize) y0 * n, *r1 = src + (gsize) y1 * n;
          float *o = dst + (gsize) oy * m;
          for (int x = 0; x < n; x++)
            {
              float a = 0.75f * r0[x] + 0.25f * r1[x];
              float l = 0.75f * r0[MAX (x - 1, 0)] + 0.25f * r1[MAX (x - 1, 0)];
              float r = 0.75f * r0[MIN (x + 1, n - 1)] + 0.25f * r1[MIN (x + 1, n - 1)];
              o[2 * x] = 0.75f * a + 0.25f * l;
              o[2 * x + 1] = 0.75f * a + 0.25f * r;
            }
        }
    }
}
