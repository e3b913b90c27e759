/* SPDX-License-Identifier: MIT
 *
 * What the AVX2 loops of several modules share: whether this build has
 * them (CXR_HAVE_AVX2; each loop still asks cxr__cpu_avx2_fma() at run
 * time, util-private.h) and the bilinear taps of four points.
 */
#pragma once

#include <glib.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CXR_HAVE_AVX2 1
#endif

#ifdef CXR_HAVE_AVX2
/* The bilinear cells of four points (@x, @y: double lanes, each inside the
 * image or 0) of a float image @stride floats a row: the cells' corner
 * column and row clamped to @xlast and @ylast (the image's width and
 * height less 2), the points' offsets in them as floats in @wx, @wy, and
 * the four taps of each cell in @p (top left, top right, bottom left,
 * bottom right). Each lane's two taps of a row are adjacent: loaded as
 * pairs and sorted into vectors (cheaper than four gathers). */
__attribute__ ((target ("avx2"))) static inline void
cxr__bilinear_taps4_avx2 (const float *img, int stride, __m128i xlast, __m128i ylast, __m256d x,
                          __m256d y, __m128 *wx, __m128 *wy, __m128 p[4])
{
  __m128i x0 = _mm_min_epi32 (_mm256_cvttpd_epi32 (x), xlast);
  __m128i y0 = _mm_min_epi32 (_mm256_cvttpd_epi32 (y), ylast);
  *wx = _mm256_cvtpd_ps (_mm256_sub_pd (x, _mm256_cvtepi32_pd (x0)));
  *wy = _mm256_cvtpd_ps (_mm256_sub_pd (y, _mm256_cvtepi32_pd (y0)));
  int o[4];
  _mm_storeu_si128 ((__m128i *) o,
                    _mm_add_epi32 (_mm_mullo_epi32 (y0, _mm_set1_epi32 (stride)), x0));
  const __m128 z = _mm_setzero_ps ();
  __m128 r0a
      = _mm_loadh_pi (_mm_loadl_pi (z, (const __m64 *) (img + o[0])), (const __m64 *) (img + o[1]));
  __m128 r0b
      = _mm_loadh_pi (_mm_loadl_pi (z, (const __m64 *) (img + o[2])), (const __m64 *) (img + o[3]));
  __m128 r1a = _mm_loadh_pi (_mm_loadl_pi (z, (const __m64 *) (img + o[0] + stride)),
                             (const __m64 *) (img + o[1] + stride));
  __m128 r1b = _mm_loadh_pi (_mm_loadl_pi (z, (const __m64 *) (img + o[2] + stride)),
                             (const __m64 *) (img + o[3] + stride));
  p[0] = _mm_shuffle_ps (r0a, r0b, _MM_SHUFFLE (2, 0, 2, 0));
  p[1] = _mm_shuffle_ps (r0a, r0b, _MM_SHUFFLE (3, 1, 3, 1));
  p[2] = _mm_shuffle_ps (r1a, r1b, _MM_SHUFFLE (2, 0, 2, 0));
  p[3] = _mm_shuffle_ps (r1a, r1b, _MM_SHUFFLE (3, 1, 3, 1));
}
#endif
