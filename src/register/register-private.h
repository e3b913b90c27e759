/* SPDX-License-Identifier: MIT
 *
 * Inside registration (register.h), split by stage:
 *   register-fft.c     FFTW plans, phase correlation, the log-polar
 *                      spectrum (Fourier-Mellin) and the translation search
 *   register-grid.c    a film on square grids: resampling, structure image,
 *                      thorax window, sampling, warping, NCC; the pyramid
 *   register-refine.c  robust Gauss-Newton refinement of a similarity
 *   register-field.c   the deformable stage's B-spline field: evaluation, fitting
 *   register-deform.c  the deformable stage: block shifts, the field's fit, evidence
 *   register.c         hypotheses, both directions, the result, the API
 *   register-warp.c    mapping points and warping films with a result
 *   register-chain.c   chain checks over a patient's registrations
 */
#pragma once

#include <fftw3.h>
#include <math.h>
#include <glib.h>

#include "cxr/register.h"
#include "simd-private.h"

G_BEGIN_DECLS

#define LP_ANGLES   180 /* log-polar: angle bins over 180 degrees */
#define LP_RADII    64  /* log-polar: radius bins */
#define REFINE_STEP 2   /* refine samples every second pixel (staggered) */

/* --- FFT (register-fft.c) --------------------------------------------------- */

typedef struct {
  fftwf_plan fwd; /* r2c, n0 x n1 */
  fftwf_plan inv; /* c2r */
} Plans;

const Plans *cxr__fft_plans (int n0, int n1);

typedef struct {
  double x, y; /* shift: b(p) ~ a(p - t) */
  double peak;
  double psr;
} Peak;

void cxr__cross_power (const float *a, const float *b, int n0, int n1, float *corr);
Peak cxr__find_peak (const float *corr, int n0, int n1, double ylo, double yhi, double xlo,
                     double xhi, double psr_above);
void cxr__log_polar_spectrum (const float *img, int n, float *lp, double rmin, double dlog);

/* --- grids (register-grid.c) --------------------------------------------------- */

/* A film resampled to an n x n grid: grid point u maps to film coordinate
 * x = (u - (n-1)/2) / k + cx. */
typedef struct {
  int n;
  double k;      /* grid px per film px */
  float *img;    /* n*n; the top grid only */
  float *valid;  /* n*n, 1 inside the film */
  float *lcn;    /* structure image */
  float *lcnv;   /* the same, NAN where the film has no data */
  float *weight; /* thorax window */
  float *region; /* top grid: where the caller wants the films compared (0..1), or NULL */
  /* refine's template: every second pixel (staggered) that has weight,
   * inside a one-pixel border, with its position from the centre, value,
   * weight and gradient; fixed for the film, so made once (grid_template) */
  guint np;
  float *tpx, *tpy, *tfl, *tfw, *tgx, *tgy;
} Grid;

/* A similarity on grid coordinates relative to the grid centre:
 * p' = [[a, -b], [b, a]] p + (tx, ty). */
typedef struct {
  double a, b, tx, ty;
} Sim;

/* The grids of one film: fine (optional), coarse, mid (half the coarse
 * size: Fourier-Mellin and a refinement step) and search (a quarter: the
 * hypotheses), each at least 64 px; and the log-polar spectrum of mid. */
typedef struct {
  Grid fine, coarse, mid, search;
  gboolean has_fine;
  double k;      /* top grid px per film px (across) */
  double aspect; /* a film pixel's height over its width */
  float *lp;     /* LP_ANGLES x LP_RADII */
  double lp_rmin, lp_dlog;
  float *lung; /* top grid: the lung fields' share of each pixel, or NULL */
} Pyr;

float *cxr__falloc (gsize n);
void cxr__pyr_build (Pyr *p, const CxrImage *im, const CxrImage *region, double aspect, int nf,
                     int nc);
void cxr__pyr_set_lungs (Pyr *p, const CxrLungFields *lungs);
void cxr__pyr_clear (Pyr *p);
void cxr__warp_grid (const float *src, int n, const Sim *S, float *out);
void cxr__register_warp_scalar (gboolean scalar);
void cxr__register_warp_no_avx512 (gboolean off);
void cxr__register_scalar (gboolean scalar);
void cxr__deform_block_sums (const double *t, int B, const double *a, int P, int m, double *num);
double cxr__grid_ncc (const Grid *f, const Grid *m, const Sim *S, int step);

static inline const Grid *
cxr__pyr_top (const Pyr *p)
{
  return p->has_fine ? &p->fine : &p->coarse;
}

/* Bilinear sample of img (w x h) at (x, y); 0 and *inside FALSE outside. */
static inline float
cxr__bilinear (const float *img, int w, int h, double x, double y, gboolean *inside)
{
  if (!(x >= 0 && y >= 0 && x <= w - 1 && y <= h - 1))
    {
      *inside = FALSE;
      return 0.f;
    }
  int x0 = MIN ((int) x, w - 2), y0 = MIN ((int) y, h - 2);
  float fx = (float) (x - x0), fy = (float) (y - y0);
  const float *p = img + (gsize) y0 * w + x0;
  *inside = TRUE;
  return (1 - fy) * ((1 - fx) * p[0] + fx * p[1]) + fy * ((1 - fx) * p[w] + fx * p[w + 1]);
}

#ifdef CXR_HAVE_AVX2
/* cxr__bilinear of the n x n @img at four points (double lanes), NAN where
 * a point is outside: the same float and double operations in the same
 * order, so the same bits (the taps: cxr__bilinear_taps4_avx2). */
__attribute__ ((target ("avx2"))) static inline __m128
cxr__bilinear4_avx2 (const float *img, int n, __m256d x, __m256d y)
{
  const __m256d zero = _mm256_setzero_pd (), hi = _mm256_set1_pd (n - 1);
  const __m128i last = _mm_set1_epi32 (n - 2);
  const __m128 one = _mm_set1_ps (1.f);
  /* inside: 0 <= x, y <= n - 1 (NAN is not) */
  __m256d in = _mm256_and_pd (
      _mm256_and_pd (_mm256_cmp_pd (x, zero, _CMP_GE_OQ), _mm256_cmp_pd (y, zero, _CMP_GE_OQ)),
      _mm256_and_pd (_mm256_cmp_pd (x, hi, _CMP_LE_OQ), _mm256_cmp_pd (y, hi, _CMP_LE_OQ)));
  int inmask = _mm256_movemask_pd (in);
  if (inmask == 0)
    return _mm_set1_ps (NAN);
  /* outside lanes sample the origin, then are replaced by NAN */
  x = _mm256_and_pd (x, in);
  y = _mm256_and_pd (y, in);
  __m128 wx, wy, p[4];
  cxr__bilinear_taps4_avx2 (img, n, last, last, x, y, &wx, &wy, p);
  __m128 p00 = p[0], p01 = p[1], p10 = p[2], p11 = p[3];
  __m128 ux = _mm_sub_ps (one, wx), uy = _mm_sub_ps (one, wy);
  __m128 t0 = _mm_add_ps (_mm_mul_ps (ux, p00), _mm_mul_ps (wx, p01));
  __m128 t1 = _mm_add_ps (_mm_mul_ps (ux, p10), _mm_mul_ps (wx, p11));
  __m128 v = _mm_add_ps (_mm_mul_ps (uy, t0), _mm_mul_ps (wy, t1));
  __m128i keep = _mm_setr_epi32 (-(inmask & 1), -((inmask >> 1) & 1), -((inmask >> 2) & 1),
                                 -((inmask >> 3) & 1));
  return _mm_blendv_ps (_mm_set1_ps (NAN), v, _mm_castsi128_ps (keep));
}

/* The similarity @S at four grid points (px, py from the centre @c):
 * x = a px - b py + tx + c, y = b px + a py + ty + c, added left to right
 * with no fused multiply-adds, as the scalar code writes it. */
__attribute__ ((target ("avx2"))) static inline void
cxr__sim_map4_avx2 (const Sim *S, double c, __m256d px, __m256d py, __m256d *x, __m256d *y)
{
  const __m256d a = _mm256_set1_pd (S->a), b = _mm256_set1_pd (S->b), cc = _mm256_set1_pd (c);
  *x = _mm256_add_pd (_mm256_add_pd (_mm256_sub_pd (_mm256_mul_pd (a, px), _mm256_mul_pd (b, py)),
                                     _mm256_set1_pd (S->tx)),
                      cc);
  *y = _mm256_add_pd (_mm256_add_pd (_mm256_add_pd (_mm256_mul_pd (b, px), _mm256_mul_pd (a, py)),
                                     _mm256_set1_pd (S->ty)),
                      cc);
}

#endif
gboolean cxr__register_avx2 (void);

/* Similarity of grid coordinates (fixed grid -> moving grid, same n). */
static inline void
cxr__sim_from_params (Sim *S, double s, double theta, double tx, double ty)
{
  S->a = s * cos (theta);
  S->b = s * sin (theta);
  S->tx = tx;
  S->ty = ty;
}

/* --- the translation search (register-fft.c) ------------------------------- */

/* The fixed side of the translation search: spectrum of lcn * weight. */
typedef struct {
  int n;
  fftwf_complex *fa;
  float *mprod; /* moving lcn * weight, warped per hypothesis */
  float *buf;
  fftwf_complex *fb;
} Search;

void cxr__search_init (Search *q, const Grid *f, const Grid *m);
void cxr__search_clear (Search *q);
void cxr__translation_at (Search *q, const Sim *rs, double psr_above, Peak *pk);

/* --- the deformable stage (register-field.c, register-deform.c) ------------- */

/* A block's wish for the field: at (x, y) of FIXED the total displacement
 * (tx, ty), FIXED px, with weight w. */
typedef struct {
  double x, y;
  double tx, ty;
  double w;
} CxrFieldTarget;

gboolean cxr__fit_field (CxrDeformField *field, int fw, int fh, const CxrFieldTarget *t, int nt,
                         double lambda);
typedef struct _CxrFieldFit CxrFieldFit;
CxrFieldFit *cxr__field_fit_new (int nx, int ny, int fw, int fh, const CxrFieldTarget *t, int nt,
                                 double lambda);
void cxr__field_fit_solve (const CxrFieldFit *ff, const CxrFieldTarget *t, CxrDeformField *f);
void cxr__field_fit_free (CxrFieldFit *ff);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrFieldFit, cxr__field_fit_free)

void cxr__deform (const Pyr *F, const Pyr *M, int fw, int fh, const Sim *S,
                  const CxrRegisterOptions *opt, CxrRegistration *out);
int cxr__deform_choose (const double *ncc, const double *dice, const gboolean *deformable, int n,
                        double ncc_global, double ncc_before);

/* --- refinement (register-refine.c) ------------------------------------------ */

gboolean cxr__refine (const Grid *f, const Grid *m, Sim *S, gboolean fixed_scale, int max_iter,
                      double tol);

G_END_DECLS
