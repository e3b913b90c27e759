/* SPDX-License-Identifier: MIT
 *
 * C (m x n) = A (m x k) B (k x n), row-major, for the convolutions of
 * src/nn/model.c: A is a layer's weights, packed once at load time into
 * panels of 8 rows (k x 8, zero-padded), B the activations (n = pixels),
 * packed per call in panels of 32 columns (k x 32, zero-padded) that stay
 * in cache while every 8-row panel of A passes over them. The 8 x 32 block
 * of C lives in 16 AVX-512 registers for the whole of k.
 *
 * Why not OpenBLAS here: with the AVX2 kernels this workplace forces
 * (OPENBLAS_CORETYPE=Haswell), OpenBLAS reaches 70-100 GFLOP/s on
 * DenseNet's shapes on this CPU, this kernel 90-165 (bench/model.py). It is
 * used only when the CPU has AVX-512F (__builtin_cpu_supports, so builds
 * stay portable: no -march) and CXR_GEMM is not "blas"; otherwise model.c
 * calls cblas_sgemm as before.
 */
#include <stdint.h>
#include <string.h>

#include "sgemm-private.h"

#define MR 8
#define NR 32

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_OWN 1
#endif

/**
 * cxr__sgemm_own:
 * Returns: whether cxr__sgemm_packed() may be used on this CPU.
 */
gboolean
cxr__sgemm_own (void)
{
#ifdef HAVE_OWN
  static gsize once = 0;
  static gboolean own;
  if (g_once_init_enter (&once))
    {
      __builtin_cpu_init ();
      own = __builtin_cpu_supports ("avx512f") && g_strcmp0 (g_getenv ("CXR_GEMM"), "blas") != 0;
      g_once_init_leave (&once, 1);
    }
  return own;
#else
  return FALSE;
#endif
}

typedef struct {
  gsize n;
  float *p;
} ThreadBuffer;

/**
 * cxr__thread_buffer_free:
 * The destroy function of a #GPrivate used with cxr__thread_buffer().
 */
void
cxr__thread_buffer_free (gpointer data)
{
  ThreadBuffer *tb = data;
  g_aligned_free (tb->p);
  g_free (tb);
}

/**
 * cxr__thread_buffer:
 * @key: a #GPrivate made with G_PRIVATE_INIT (cxr__thread_buffer_free)
 *
 * Returns: this thread's buffer for @key, at least @n floats, 64-byte
 * aligned, grown when asked for more and kept until the thread ends, so a
 * loop over films reuses its memory instead of faulting fresh pages in.
 */
float *
cxr__thread_buffer (GPrivate *key, gsize n)
{
  ThreadBuffer *tb = g_private_get (key);
  if (tb == NULL)
    {
      tb = g_new0 (ThreadBuffer, 1);
      g_private_set (key, tb);
    }
  if (tb->n < n)
    {
      g_aligned_free (tb->p);
      tb->p = g_aligned_alloc (n, sizeof (float), 64);
      tb->n = n;
    }
  return tb->p;
}

/**
 * cxr__sgemm_pack_a:
 * Returns: (transfer full): @a (m x k) as ceil(m / 8) panels of k x 8,
 * zero-padded, 64-byte aligned; free with g_aligned_free().
 */
float *
cxr__sgemm_pack_a (const float *a, int m, int k)
{
  int np = (m + MR - 1) / MR;
  float *p = g_aligned_alloc0 ((gsize) np * MR * k, sizeof (float), 64);
  for (int b = 0; b < np; b++)
    for (int q = 0; q < k; q++)
      for (int r = 0; r < MR && b * MR + r < m; r++)
        p[((gsize) b * k + q) * MR + r] = a[(gsize) (b * MR + r) * k + q];
  return p;
}

#ifdef HAVE_OWN

#define FMA_ROW(r)                                                                                 \
  {                                                                                                \
    __m512 av = _mm512_set1_ps (ap[r]);                                                            \
    c##r##0 = _mm512_fmadd_ps (av, b0, c##r##0);                                                   \
    c##r##1 = _mm512_fmadd_ps (av, b1, c##r##1);                                                   \
  }
#define STORE_ROW(r)                                                                               \
  if (r < rows)                                                                                    \
    {                                                                                              \
      _mm512_mask_storeu_ps (c + (gsize) r * ldc, m0, c##r##0);                                    \
      _mm512_mask_storeu_ps (c + (gsize) r * ldc + 16, m1, c##r##1);                               \
    }

/* c (rows x 32, masked by m0 | m1) = ap (k x 8 panel) . bp (k x 32 panel) */
__attribute__ ((target ("avx512f"))) static void
kernel_8x32 (int k, const float *restrict ap, const float *restrict bp, float *c, int ldc, int rows,
             __mmask16 m0, __mmask16 m1)
{
  __m512 c00 = _mm512_setzero_ps (), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  for (int q = 0; q < k; q++)
    {
      __m512 b0 = _mm512_load_ps (bp), b1 = _mm512_load_ps (bp + 16);
      FMA_ROW (0)
      FMA_ROW (1) FMA_ROW (2) FMA_ROW (3) FMA_ROW (4) FMA_ROW (5) FMA_ROW (6) FMA_ROW (7) ap += MR;
      bp += NR;
    }
  STORE_ROW (0)
  STORE_ROW (1) STORE_ROW (2) STORE_ROW (3) STORE_ROW (4) STORE_ROW (5) STORE_ROW (6) STORE_ROW (7)
}

/* Each thread keeps its B panel (k x 32 floats, 147 KB for k = 1152). */
static GPrivate panel_key = G_PRIVATE_INIT (cxr__thread_buffer_free);

/* Write masks for the two 16-float halves of a panel with nc columns. */
static void
panel_masks (int nc, __mmask16 *m0, __mmask16 *m1)
{
  *m0 = nc >= 16 ? 0xFFFF : (__mmask16) ((1u << nc) - 1);
  *m1 = nc >= 32 ? 0xFFFF : nc > 16 ? (__mmask16) ((1u << (nc - 16)) - 1) : 0;
}

/* The k x 32 panel of im2col(x) for output pixels j .. j + nc - 1: per
 * (channel, ky, kx) row, the pixels of one output row are a contiguous run
 * of the input row iy = y + ky - pad, clipped to the image; the output is
 * o x o. Which lanes each run fills, and from where, depends on the tap
 * (ky, kx), not the channel: worked out once per tap, then every channel's
 * row is one masked load per run and half panel, and two stores. */
__attribute__ ((target ("avx512f"))) static void
pack_conv (const CxrConvInput *x, int o, int j, int nc, float *bp)
{
  int seg_t[NR + 1], seg_y[NR], seg_x[NR], ns = 0;
  for (int t = 0; t < nc;)
    {
      int y = (j + t) / o, x0 = (j + t) % o, len = MIN (nc - t, o - x0);
      seg_t[ns] = t;
      seg_y[ns] = y;
      seg_x[ns++] = x0;
      t += len;
    }
  seg_t[ns] = nc;
  /* per tap, its runs: lanes (two 16-lane masks) and the source offset in
   * a channel that lane 0 would read (lane t reads offset + t) */
  int taps = x->k * x->k, nrun[CXR_CONV_MAX_K * CXR_CONV_MAX_K];
  __mmask16 rm0[CXR_CONV_MAX_K * CXR_CONV_MAX_K][NR], rm1[CXR_CONV_MAX_K * CXR_CONV_MAX_K][NR];
  ptrdiff_t roff[CXR_CONV_MAX_K * CXR_CONV_MAX_K][NR];
  for (int ky = 0, tap = 0; ky < x->k; ky++)
    for (int kx = 0; kx < x->k; kx++, tap++)
      {
        nrun[tap] = 0;
        for (int s = 0; s < ns; s++)
          {
            int iy = seg_y[s] + ky - x->pad;
            if (iy < 0 || iy >= x->h)
              continue;
            int len = seg_t[s + 1] - seg_t[s];
            int ix0 = seg_x[s] + kx - x->pad;
            int lo = seg_t[s] + MAX (0, -ix0), hi = seg_t[s] + MIN (len, x->w - ix0);
            if (lo >= hi)
              continue;
            guint64 lanes
                = ((G_GUINT64_CONSTANT (1) << hi) - 1) & ~((G_GUINT64_CONSTANT (1) << lo) - 1);
            int r = nrun[tap]++;
            rm0[tap][r] = (__mmask16) lanes;
            rm1[tap][r] = (__mmask16) (lanes >> 16);
            roff[tap][r] = (ptrdiff_t) iy * x->w + ix0 - seg_t[s];
          }
      }
  gsize hw = (gsize) x->h * x->w;
  float *row = bp;
  for (int c = 0; c < x->ci; c++)
    {
      /* addresses of masked-off lanes may lie outside the channel (never
       * read): formed as integers */
      uintptr_t in = (uintptr_t) (x->in + c * hw);
      for (int tap = 0; tap < taps; tap++, row += NR)
        {
          __m512 v0 = _mm512_setzero_ps (), v1 = v0;
          for (int r = 0; r < nrun[tap]; r++)
            {
              const float *p = (const float *) (in + roff[tap][r] * (ptrdiff_t) sizeof (float));
              v0 = _mm512_mask_loadu_ps (v0, rm0[tap][r], p);
              v1 = _mm512_mask_loadu_ps (v1, rm1[tap][r], p + 16);
            }
          _mm512_store_ps (row, v0);
          _mm512_store_ps (row + 16, v1);
        }
    }
}

/* Where B's panels come from: a matrix, or a convolution's input. */
typedef struct {
  const float *b; /* k x n, row stride ldb; or NULL and: */
  int ldb;
  const CxrConvInput *x; /* im2col (x), output o x o */
  int o;
} Source;

__attribute__ ((target ("avx512f"))) static void
pack_panel (const Source *src, int k, int j, int nc, __mmask16 m0, __mmask16 m1, float *bp)
{
  if (src->b == NULL)
    {
      pack_conv (src->x, src->o, j, nc, bp);
      return;
    }
  const float *b = src->b + j;
  for (int q = 0; q < k; q++, b += src->ldb)
    {
      /* masked: columns past n are neither read nor kept */
      _mm512_store_ps (bp + (gsize) q * NR, _mm512_maskz_loadu_ps (m0, b));
      _mm512_store_ps (bp + (gsize) q * NR + 16, _mm512_maskz_loadu_ps (m1, b + 16));
    }
}

/* C (m x n) = A . B: for each 32-column panel of B, packed once, every
 * 8-row panel of A. */
__attribute__ ((target ("avx512f"))) static void
drive (int m, int n, int k, const float *ap, const Source *src, float *c, int ldc)
{
  float *bp = cxr__thread_buffer (&panel_key, (gsize) k * NR);
  int np = (m + MR - 1) / MR;
  for (int j = 0; j < n; j += NR)
    {
      int nc = MIN (NR, n - j);
      __mmask16 m0, m1;
      panel_masks (nc, &m0, &m1);
      pack_panel (src, k, j, nc, m0, m1, bp);
      for (int p = 0; p < np; p++)
        kernel_8x32 (k, ap + (gsize) p * k * MR, bp, c + (gsize) p * MR * ldc + j, ldc,
                     MIN (MR, m - p * MR), m0, m1);
    }
}
#endif

/**
 * cxr__sgemm_conv:
 * @ap: the convolution's weights (m x ci k k) packed by cxr__sgemm_pack_a()
 * @c: m x (output pixels)
 *
 * A stride-1 convolution without an im2col copy. Only when
 * cxr__sgemm_own() is %TRUE.
 */
void
cxr__sgemm_conv (int m, const float *ap, const CxrConvInput *x, float *c)
{
#ifdef HAVE_OWN
  g_return_if_fail (cxr__sgemm_own ());
  int o = x->h + 2 * x->pad - x->k + 1;
  Source src = { NULL, 0, x, o };
  drive (m, o * o, x->ci * x->k * x->k, ap, &src, c, o * o);
#else
  g_return_if_reached ();
#endif
}

/**
 * cxr__sgemm_packed:
 * @ap: A packed by cxr__sgemm_pack_a()
 *
 * C (m x n, row stride @ldc) = A . B (k x n, row stride @ldb). Only when
 * cxr__sgemm_own() is %TRUE.
 */
void
cxr__sgemm_packed (int m, int n, int k, const float *ap, const float *b, int ldb, float *c, int ldc)
{
#ifdef HAVE_OWN
  g_return_if_fail (cxr__sgemm_own ());
  Source src = { b, ldb, NULL, 0 };
  drive (m, n, k, ap, &src, c, ldc);
#else
  g_return_if_reached ();
#endif
}
