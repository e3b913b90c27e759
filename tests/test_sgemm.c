/* SPDX-License-Identifier: MIT
 *
 * cxrtrack's own matrix product (src/nn/sgemm.c) against a plain triple loop
 * in double precision, on shapes that are not multiples of its 8 x 32
 * blocks, and its implicit-im2col convolution against an explicit one.
 * Where the CPU lacks AVX-512 the product is not used, and the test says
 * so and skips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include <glib.h>

#include "sgemm-private.h"

static double
max_rel_error (const float *c, const double *ref, gsize n)
{
  double scale = 1e-30, err = 0;
  for (gsize i = 0; i < n; i++)
    scale = MAX (scale, fabs (ref[i]));
  for (gsize i = 0; i < n; i++)
    err = MAX (err, fabs (c[i] - ref[i]));
  return err / scale;
}

static void
test_product (void **state)
{
  if (!cxr__sgemm_own ())
    skip ();
  int shapes[][3] = { { 1, 1, 1 },      { 7, 33, 5 },   { 13, 17, 19 }, { 8, 32, 64 },
                      { 32, 49, 1152 }, { 130, 70, 3 }, { 9, 16, 300 } };
  GRand *rng = g_rand_new_with_seed (7);
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], ldb = n + 3, ldc = n + 5;
      g_autofree float *a = g_new (float, (gsize) m * k), *b = g_new (float, (gsize) k * ldb);
      g_autofree float *c = g_new (float, (gsize) m * ldc);
      g_autofree double *ref = g_new0 (double, (gsize) m * n);
      for (gsize i = 0; i < (gsize) m * k; i++)
        a[i] = (float) g_rand_double_range (rng, -1, 1);
      for (gsize i = 0; i < (gsize) k * ldb; i++)
        b[i] = (float) g_rand_double_range (rng, -1, 1);
      for (gsize i = 0; i < (gsize) m * ldc; i++)
        c[i] = 12345.f; /* the padding columns must stay untouched */
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
          for (int q = 0; q < k; q++)
            ref[(gsize) i * n + j] += (double) a[(gsize) i * k + q] * b[(gsize) q * ldb + j];
      float *ap = cxr__sgemm_pack_a (a, m, k);
      cxr__sgemm_packed (m, n, k, ap, b, ldb, c, ldc);
      g_aligned_free (ap);
      g_autofree float *dense = g_new (float, (gsize) m * n);
      for (int i = 0; i < m; i++)
        {
          for (int j = 0; j < n; j++)
            dense[(gsize) i * n + j] = c[(gsize) i * ldc + j];
          for (int j = n; j < ldc; j++)
            assert_true (c[(gsize) i * ldc + j] == 12345.f);
        }
      double e = max_rel_error (dense, ref, (gsize) m * n);
      if (e > 1e-5)
        fail_msg ("%dx%dx%d: relative error %.2g", m, n, k, e);
    }
  g_rand_free (rng);
}

static void
test_conv (void **state)
{
  if (!cxr__sgemm_own ())
    skip ();
  /* 3x3 pad 1 and 5x5 pad 2 on odd sizes, so panels straddle rows; the
   * largest kernel the packing takes (7x7); no padding on rows longer
   * than a panel; a row of 33 (a panel's last run one pixel long); 2 x 2
   * outputs (sixteen runs a panel); padding wider than the kernel's
   * reach (output rows and columns that read nothing) */
  int cases[][4]
      = { { 3, 7, 3, 1 },  { 5, 13, 3, 1 }, { 2, 9, 5, 2 }, { 4, 1, 3, 1 }, { 2, 10, 7, 3 },
          { 3, 40, 3, 0 }, { 2, 33, 3, 1 }, { 3, 2, 3, 1 }, { 2, 6, 3, 2 } };
  GRand *rng = g_rand_new_with_seed (11);
  for (guint s = 0; s < G_N_ELEMENTS (cases); s++)
    {
      int ci = cases[s][0], h = cases[s][1], k = cases[s][2], pad = cases[s][3], m = 10;
      int o = h + 2 * pad - k + 1, kk = ci * k * k;
      g_autofree float *in = g_new (float, (gsize) ci * h * h), *w = g_new (float, (gsize) m * kk);
      g_autofree float *c = g_new (float, (gsize) m * o * o);
      g_autofree double *ref = g_new0 (double, (gsize) m * o * o);
      for (gsize i = 0; i < (gsize) ci * h * h; i++)
        in[i] = (float) g_rand_double_range (rng, -1, 1);
      for (gsize i = 0; i < (gsize) m * kk; i++)
        w[i] = (float) g_rand_double_range (rng, -1, 1);
      for (int f = 0; f < m; f++)
        for (int y = 0; y < o; y++)
          for (int x = 0; x < o; x++)
            for (int ch = 0; ch < ci; ch++)
              for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++)
                  {
                    int iy = y + ky - pad, ix = x + kx - pad;
                    if (iy >= 0 && iy < h && ix >= 0 && ix < h)
                      ref[((gsize) f * o + y) * o + x]
                          += (double) w[(gsize) f * kk + (ch * k + ky) * k + kx]
                             * in[((gsize) ch * h + iy) * h + ix];
                  }
      float *ap = cxr__sgemm_pack_a (w, m, kk);
      CxrConvInput x = { in, ci, h, h, k, pad };
      cxr__sgemm_conv (m, ap, &x, c);
      g_aligned_free (ap);
      double e = max_rel_error (c, ref, (gsize) m * o * o);
      if (e > 1e-5)
        fail_msg ("conv ci %d h %d k %d: relative error %.2g", ci, h, k, e);
    }
  g_rand_free (rng);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_product),
    cmocka_unit_test (test_conv),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
