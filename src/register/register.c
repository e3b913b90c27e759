/* SPDX-License-Identifier: MIT
 *
 * Registration of two chest films by a similarity transform. The stages
 * live in their own files (register-private.h lists them); this one holds
 * the search that joins them, and the API.
 *
 * 1. Both films are area-resampled onto centred square grids (coarse,
 *    mid, search and optionally fine) and
 * 2. turned into structure images weighted by a thorax window
 *    (register-grid.c).
 * 3. Rotation and scale (Fourier-Mellin; Reddy & Chatterji, IEEE TIP 1996):
 *    magnitude spectra of the mid grids, high-passed and log-compressed,
 *    are resampled to log-polar coordinates, where rotation and scale
 *    become a shift that phase correlation finds, once per pair; the
 *    search is limited to the allowed angle and scale ranges. Real
 *    follow-up films defeat Fourier-Mellin alone, so its estimate is one
 *    hypothesis among a grid over the allowed ranges (6 degree, 10 %
 *    steps), and with rotation limits beyond 90 degrees each hypothesis
 *    also comes turned by 180 (the ambiguity of magnitude spectra).
 * 4. Translation: phase correlation on the search grid after undoing each
 *    hypothesis's rotation and scale, with a parabolic sub-pixel peak and
 *    its peak-to-sidelobe ratio (PSR); the four highest peaks go on.
 * 5. Refinement of all four parameters of the four by robust Gauss-Newton
 *    (register-refine.c) on the search grid; the best-correlating one
 *    goes on through the mid and coarse (and fine) grids. Both directions are estimated, each from its own
 *    hypotheses; the result is the midpoint of the forward estimate and
 *    the inverse of the backward one, and their disagreement lowers the
 *    confidence.
 * 6. The global stage's own confidence (global_confidence) = weighted
 *    normalised cross-correlation of the structure images after alignment
 *    on the top grid, times exp(-disagreement / 10 px); without lung
 *    fields, below min_confidence, or outside the search limits, or
 *    diverged: 'failed'.
 * 7. The deformable stage (register-deform.c): a B-spline field from block
 *    shifts inside the thorax, kept when it improves the lungs' NCC (or
 *    their overlap); where the lungs still overlap by less than ok_dice,
 *    a field matched with the lung outlines weighted more is tried and
 *    the better by NCC + Dice kept.
 * 8. The confidence: the chance that the pair is aligned, calibrated on
 *    real pairs graded by eye (aligned_probability below), from the NCC
 *    inside FIXED's lung fields after the whole registration.
 * 9. One status rule. 'failed': diverged, outside the search limits, no
 *    better aligned than the films unmoved (NCC after <= before), or
 *    without lung fields a global confidence under min_confidence. 'ok':
 *    the confidence >= ok_confidence (0.5: more likely aligned than not),
 *    and with lung fields FIXED's and the warped MOVING's overlapping with
 *    Dice >= ok_dice (0.90); a field kept never folds (register-deform.c).
 *    Otherwise 'low_confidence', with the reason.
 */
#include "register-private.h"
/* after fftw3.h (in register-private.h): FFTW keeps its own float[2]
 * complex type */
#include <complex.h>
#include <math.h>
#include <string.h>

#include "cxr/error.h"

/* Forward and inverted backward results closer than this (film px) at five
 * points are not cross-seeded: the result, their midpoint, is then within
 * AGREE_PX / 2 of either. Cross-seeding is for directions that found
 * different optima (tens of px apart on real films), and costs a third of
 * a registration. */
#define AGREE_PX 0.5

const char *
cxr_register_status_name (CxrRegisterStatus s)
{
  switch (s)
    {
    case CXR_REGISTER_OK: return "ok";
    case CXR_REGISTER_LOW_CONFIDENCE: return "low_confidence";
    default: return "failed";
    }
}

void
cxr_register_options_init (CxrRegisterOptions *o)
{
  memset (o, 0, sizeof *o);
  o->coarse_size = 256;
  o->fine_size = 0;
  o->max_angle_deg = 15;
  o->min_scale = 0.8;
  o->max_scale = 1.25;
  o->ok_confidence = 0.5;
  o->min_confidence = 0.3;
  o->deform_points = 24;
  o->deform_lambda = 0.05;
  o->ok_dice = 0.90;
  o->deform_lung_weight = 0.2;
  o->deform_min_block = 16;
  o->deform_refine_steps = 0;
}

/* Fourier-Mellin on the two films' log-polar spectra: the rotation (rad)
 * and scale of MOVING relative to FIXED in the common frame of the grids
 * (each film fitted to the same extent), or FALSE if no peak lies inside
 * the limits. Registering FIXED to MOVING gives (-theta, 1/s). */
static gboolean
fourier_mellin (const Pyr *F, const Pyr *M, const CxrRegisterOptions *opt, double *theta,
                double *scale)
{
  double dlog = F->lp_dlog;
  float *corr = cxr__falloc ((gsize) LP_ANGLES * LP_RADII);
  cxr__cross_power (F->lp, M->lp, LP_ANGLES, LP_RADII, corr);
  double amax = MIN (opt->max_angle_deg, 90.0) / 180.0 * LP_ANGLES;
  /* LP_m(rho, phi) = LP_f(rho + log s, phi - theta): shift (theta, -log s) */
  double rlo = opt->fixed_scale ? 0 : -log (opt->max_scale) / dlog;
  double rhi = opt->fixed_scale ? 0 : -log (opt->min_scale) / dlog;
  Peak pk
      = cxr__find_peak (corr, LP_ANGLES, LP_RADII, -amax, amax, floor (rlo), ceil (rhi), INFINITY);
  fftwf_free (corr);
  *theta = pk.y * G_PI / LP_ANGLES;
  *scale = opt->fixed_scale ? 1.0 : exp (-pk.x * dlog);
  return isfinite (pk.peak);
}

/* A pose: the transform between the films' physical frames. Film pixel
 * (x, y) is at (x - cx, (y - cy) * aspect), in units of the film's pixel
 * width. For square pixels this is the public convention;
 * cxr_register_pair reports dy in MOVING's pixels (dy / aspect). */
typedef struct {
  double s, theta, dx, dy;
} Pose;

static void
pose_apply (const Pose *t, double x, double y, double *ox, double *oy)
{
  *ox = t->s * (cos (t->theta) * x - sin (t->theta) * y) + t->dx;
  *oy = t->s * (sin (t->theta) * x + cos (t->theta) * y) + t->dy;
}

static Pose
pose_inverse (const Pose *t)
{
  Pose r = { 1 / t->s, -t->theta, 0, 0 };
  double x, y;
  pose_apply (&r, t->dx, t->dy, &x, &y);
  r.dx = -x;
  r.dy = -y;
  return r;
}

/* Geodesic midpoint X (X^-1 Y)^(1/2) on the similarity group, with a
 * transform written as p -> z p + t over complex numbers (z = s e^{i theta}).
 * It satisfies mid(X, Y)^-1 = mid(Y^-1, X^-1), which is what makes
 * register(B, A) the exact inverse of register(A, B). */
static Pose
pose_midpoint (const Pose *a, const Pose *b)
{
  double complex za = a->s * cexp (I * a->theta), ta = a->dx + I * a->dy;
  double complex zb = b->s * cexp (I * b->theta), tb = b->dx + I * b->dy;
  /* W = A^-1 B = (zb / za, (tb - ta) / za) */
  double complex zw = zb / za, tw = (tb - ta) / za;
  /* W^(1/2) = (sqrt zw, tw / (1 + sqrt zw)), principal root */
  double complex zh = csqrt (zw), th = tw / (1 + zh);
  /* A W^(1/2) = (za zh, za th + ta) */
  double complex z = za * zh, t = za * th + ta;
  Pose r = { cabs (z), carg (z), creal (t), cimag (t) };
  return r;
}

typedef struct {
  Sim S; /* on the top grids: p'_grid = S p_grid */
  double psr;
  gboolean ok;
} Raw;

/* Grid similarity -> film transform: p_grid = kf p, p'_grid = km p'. */
static Pose
raw_to_pose (const Raw *r, const Pyr *f, const Pyr *m)
{
  double ratio = m->k / f->k;
  Pose t = { sqrt (r->S.a * r->S.a + r->S.b * r->S.b) / ratio, atan2 (r->S.b, r->S.a),
             r->S.tx / m->k, r->S.ty / m->k };
  return t;
}

static Sim
pose_to_sim (const Pose *t, const Pyr *f, const Pyr *m)
{
  Sim S;
  cxr__sim_from_params (&S, t->s * m->k / f->k, t->theta, t->dx * m->k, t->dy * m->k);
  return S;
}

static double
pyr_ncc (const Pyr *f, const Pyr *m, const Sim *S, int step)
{
  return cxr__grid_ncc (cxr__pyr_top (f), cxr__pyr_top (m), S, step);
}

/* One direction: hypotheses, scoring, refinement, all on the grids, whose
 * common frame fits each film to the same extent: the scale limits apply
 * there, whatever the films' sizes. fm: Fourier-Mellin's (rotation, scale
 * in that frame), or NULL. */
static void
estimate (const Pyr *F, const Pyr *M, const CxrRegisterOptions *opt, const double *fm, Raw *raw)
{
  const Grid *fc = &F->coarse, *mc = &M->coarse, *Fs = &F->search, *Ms = &M->search;
  int nc = fc->n, ns = Fs->n;
  memset (raw, 0, sizeof *raw);
  gint64 t_start = g_get_monotonic_time ();

  /* Hypotheses for rotation and scale: Fourier-Mellin's, and a grid over
   * the allowed ranges (real follow-up films defeat Fourier-Mellin alone:
   * breathing, collimation and exposure change the spectra more than the
   * pose does). Each is scored by the translation peak on the search grid. */
  GArray *hyp = g_array_new (FALSE, FALSE, sizeof (double) * 2);
  if (fm)
    g_array_append_vals (hyp, fm, 1);
  {
    double amax = MIN (opt->max_angle_deg, 90.0);
    const double AST = 6.0, SST = 1.1;
    int na = (int) floor (amax / AST);
    int nsc = opt->fixed_scale ? 0 : (int) ceil (log (opt->max_scale / opt->min_scale) / log (SST));
    for (int ia = -na; ia <= na; ia++)
      for (int is = 0; is <= nsc; is++)
        {
          double sc = opt->fixed_scale
                          ? 1.0
                          : opt->min_scale
                                * exp (is * log (opt->max_scale / opt->min_scale) / MAX (nsc, 1));
          double h[2] = { ia * AST * G_PI / 180, sc };
          g_array_append_val (hyp, h);
          if (opt->max_angle_deg > 90)
            {
              double h2[2] = { h[0] + G_PI, sc };
              g_array_append_val (hyp, h2);
            }
        }
  }
  /* Score every hypothesis; keep the best few. */
  enum { KEEP = 4 };
  Search q;
  cxr__search_init (&q, Fs, Ms);
  Sim best[KEEP];
  double best_score[KEEP], best_psr[KEEP] = { 0 };
  for (int k = 0; k < KEEP; k++)
    best_score[k] = -INFINITY;
  for (guint h = 0; h < hyp->len; h++)
    {
      const double *hv = &g_array_index (hyp, double, 2 * h);
      Sim S;
      Peak tp;
      cxr__sim_from_params (&S, hv[1], hv[0], 0, 0);
      /* the PSR only for a peak that enters the best KEEP */
      cxr__translation_at (&q, &S, best_score[KEEP - 1], &tp);
      if (!isfinite (tp.peak))
        continue;
      S.tx = S.a * tp.x - S.b * tp.y;
      S.ty = S.b * tp.x + S.a * tp.y;
      int k = KEEP - 1;
      if (tp.peak <= best_score[k])
        continue;
      while (k > 0 && best_score[k - 1] < tp.peak)
        {
          best[k] = best[k - 1];
          best_score[k] = best_score[k - 1];
          best_psr[k] = best_psr[k - 1];
          k--;
        }
      best[k] = S;
      best_score[k] = tp.peak;
      best_psr[k] = tp.psr;
    }
  g_debug ("register: %u hypotheses scored in %.1f ms", hyp->len,
           (g_get_monotonic_time () - t_start) / 1e3);
  g_array_unref (hyp);
  cxr__search_clear (&q);

  /* Refine the best hypotheses on the search grid; keep the one whose
   * structure correlates best, then refine it on the mid, coarse (and fine)
   * grids. */
  Sim S = { 1, 0, 0, 0 };
  double s_ncc = -INFINITY;
  for (int k = 0; k < KEEP; k++)
    {
      if (!isfinite (best_score[k]))
        continue;
      Sim T = best[k];
      if (!cxr__refine (Fs, Ms, &T, opt->fixed_scale, 6, 0.05))
        continue;
      double c = cxr__grid_ncc (Fs, Ms, &T, 1);
      if (c > s_ncc)
        {
          s_ncc = c;
          S = T;
          raw->psr = best_psr[k];
        }
    }

  g_debug ("register: candidates refined at %.1f ms", (g_get_monotonic_time () - t_start) / 1e3);
  raw->ok = isfinite (s_ncc);
  if (raw->ok && F->mid.n != ns)
    {
      double up = F->mid.n / (double) ns;
      S.tx *= up;
      S.ty *= up;
      ns = F->mid.n;
      raw->ok = cxr__refine (&F->mid, &M->mid, &S, opt->fixed_scale, 6, 0.02);
    }
  if (raw->ok)
    {
      double up = nc / (double) ns;
      S.tx *= up;
      S.ty *= up;
      raw->ok = cxr__refine (fc, mc, &S, opt->fixed_scale, 6, 0.01);
    }
  if (raw->ok && F->has_fine)
    {
      double up = F->fine.n / (double) nc;
      S.tx *= up;
      S.ty *= up;
      raw->ok = cxr__refine (&F->fine, &M->fine, &S, opt->fixed_scale, 6, 0.002);
    }
  g_debug ("register: estimate done at %.1f ms", (g_get_monotonic_time () - t_start) / 1e3);
  raw->S = S;
}

/* Refines a top-grid similarity on the coarse then the fine grid; returns
 * its correlation on the top grid (-inf if it diverged). */
static double
polish (const Pyr *F, const Pyr *M, Sim *S, const CxrRegisterOptions *opt)
{
  double down = F->coarse.n / (double) cxr__pyr_top (F)->n;
  Sim T = *S;
  T.tx *= down;
  T.ty *= down;
  if (!cxr__refine (&F->coarse, &M->coarse, &T, opt->fixed_scale, 6, 0.01))
    return -INFINITY;
  if (F->has_fine)
    {
      T.tx /= down;
      T.ty /= down;
      if (!cxr__refine (&F->fine, &M->fine, &T, opt->fixed_scale, 6, 0.002))
        return -INFINITY;
    }
  *S = T;
  return pyr_ncc (F, M, S, 1);
}

/* How far apart (in MOVING's frame) two estimates of one transform put the
 * centre and four lung-field points of a w x h FIXED: the largest of the
 * five distances. */
static double
disagreement (const Pose *t1, const Pose *t2, int w, int h)
{
  double d = 0;
  for (int k = 0; k < 5; k++)
    {
      double px = k == 0 ? 0 : (k & 1 ? 1 : -1) * w / 4.0;
      double py = k == 0 ? 0 : (k & 2 ? 1 : -1) * h / 4.0;
      double ax, ay, bx, by;
      pose_apply (t1, px, py, &ax, &ay);
      pose_apply (t2, px, py, &bx, &by);
      d = MAX (d, hypot (ax - bx, ay - by));
    }
  return d;
}

/* Whether the forward result and the inverse of the backward one agree
 * within AGREE_PX: then the two cross-seeding polishes are skipped. */
static gboolean
directions_agree (const Raw *fw, const Raw *bw, const Pyr *F, const Pyr *M, int w, int h)
{
  Pose t1 = raw_to_pose (fw, F, M), t2 = raw_to_pose (bw, M, F);
  Pose t2i = pose_inverse (&t2);
  return disagreement (&t1, &t2i, w, h) <= AGREE_PX;
}

struct _CxrRegisterFilm {
  Pyr pyr;
  int width, height; /* the film's, px */
  int nc, nf;        /* grid sizes it was prepared with */
};

/* @opt = @options or the defaults */
static void
options_get (const CxrRegisterOptions *options, CxrRegisterOptions *opt)
{
  if (options)
    *opt = *options;
  else
    cxr_register_options_init (opt);
}

/**
 * cxr_register_film_new_weighted:
 * @weight: (nullable): where the films should be compared, 0..1, an image
 *   of any size over the film's whole extent (a thorax region from the
 *   lung fields, cxr_lungs_thorax_weight); %NULL: the default window, a
 *   taper that drops the film's borders
 *
 * Prepares @film (pixel aspect @aspect, 0 = square) for registration;
 * NULL with @error set if it is too small or the aspect is not valid.
 */
CxrRegisterFilm *
cxr_register_film_new_weighted (const CxrImage *film, double aspect, const CxrImage *weight,
                                const CxrRegisterOptions *options, GError **error)
{
  g_return_val_if_fail (film != NULL, NULL);
  CxrRegisterOptions opt;
  options_get (options, &opt);
  if (film->width < 32 || film->height < 32)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "a film of %dx%d px: registration needs at least 32x32", film->width,
                   film->height);
      return NULL;
    }
  if (aspect != 0 && !(aspect >= 0.25 && aspect <= 4))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "pixel aspect %g: it must be 0 (square) or within 0.25..4", aspect);
      return NULL;
    }
  if (weight && (weight->width < 8 || weight->height < 8))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "a weight image of %dx%d px: it needs at least 8x8", weight->width,
                   weight->height);
      return NULL;
    }
  CxrRegisterFilm *f = g_new0 (CxrRegisterFilm, 1);
  f->nc = opt.coarse_size >= 64 ? opt.coarse_size : 256;
  f->nf = opt.fine_size > f->nc ? opt.fine_size : 0;
  f->width = film->width;
  f->height = film->height;
  cxr__pyr_build (&f->pyr, film, weight, aspect > 0 ? aspect : 1.0, f->nf, f->nc);
  return f;
}

/**
 * cxr_register_film_new_lungs:
 * @lungs: (nullable): the film's lung fields (cxr_lungs_segment, at the
 *   film's size)
 *
 * Prepares @film for registration with its lung fields: when they are
 * 'ok', the films are compared over the thorax they outline
 * (cxr_lungs_thorax_weight), and the deformable stage's evidence (lung
 * NCC and overlap) is measured inside them; otherwise as
 * cxr_register_film_new().
 */
CxrRegisterFilm *
cxr_register_film_new_lungs (const CxrImage *film, double aspect, const CxrLungFields *lungs,
                             const CxrRegisterOptions *options, GError **error)
{
  gboolean ok = lungs && lungs->status == CXR_LUNGS_OK && lungs->width == film->width
                && lungs->height == film->height;
  g_autoptr (CxrImage) w = ok ? cxr_lungs_thorax_weight (lungs) : NULL;
  CxrRegisterFilm *f = cxr_register_film_new_weighted (film, aspect, w, options, error);
  if (f && ok && w)
    cxr__pyr_set_lungs (&f->pyr, lungs);
  return f;
}

/**
 * cxr_register_film_new:
 * cxr_register_film_new_weighted() with the default window.
 */
CxrRegisterFilm *
cxr_register_film_new (const CxrImage *film, double aspect, const CxrRegisterOptions *options,
                       GError **error)
{
  return cxr_register_film_new_weighted (film, aspect, NULL, options, error);
}

void
cxr_register_film_free (CxrRegisterFilm *film)
{
  if (film == NULL)
    return;
  cxr__pyr_clear (&film->pyr);
  g_free (film);
}

/* @opt = @options or the defaults; @out reset to a failed identity. */
static void
pair_begin (const CxrRegisterOptions *options, CxrRegisterOptions *opt, CxrRegistration *out)
{
  options_get (options, opt);
  memset (out, 0, sizeof *out);
  out->scale = 1;
  out->status = CXR_REGISTER_FAILED;
}

/* The confidence: the chance that a registration whose NCC inside FIXED's
 * lung fields (or its thorax window) is @ncc_after after the whole
 * registration has the films aligned, where aligned means what a reader
 * sees on the two films overlaid: no double contour of the lung outlines,
 * the domes, the heart border or the ribs inside the lungs (about 1 % of
 * the film, ~10 px of a 1024-px film). A logistic fit to 223 consecutive
 * pairs of series1024 and the COVID series graded by eye
 * (bench/data/registration_grades.csv, bench/register_confidence.py,
 * which prints these two numbers and the calibration out of fold); of
 * the evidence a pair has (NCC before, after the global stage and after
 * the field, the lungs' overlap, the field's size and local area change),
 * the NCC after predicted the grade best and the others added nothing out
 * of fold. Schema 0022 applies the same two numbers to stored rows. */
#define ALIGNED_INTERCEPT (-3.5265)
#define ALIGNED_SLOPE     5.2191

static double
aligned_probability (double ncc_after)
{
  if (!isfinite (ncc_after))
    return 0;
  return 1 / (1 + exp (-(ALIGNED_INTERCEPT + ALIGNED_SLOPE * ncc_after)));
}

static gboolean
check_options (const CxrRegisterOptions *opt, GError **error)
{
  if (opt->min_scale <= 0 || opt->max_scale < opt->min_scale)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "scale limits %g..%g are not valid",
                   opt->min_scale, opt->max_scale);
      return FALSE;
    }
  return TRUE;
}

/**
 * cxr_register_pair:
 * @fixed: the reference film
 * @moving: the film to align to it
 * @inputs: (nullable): the films' pixel aspects and lung fields; %NULL:
 *   square pixels, no lung fields
 * @options: (nullable): search limits and grid sizes; %NULL for defaults
 * @out: (out caller-allocates): the transform (see the convention in
 *   register.h), its confidence and status
 *
 * Returns: %FALSE only for unusable input (too small); a registration that
 * does not converge returns %TRUE with status CXR_REGISTER_FAILED.
 */
gboolean
cxr_register_pair (const CxrImage *fixed, const CxrImage *moving, const CxrRegisterInputs *inputs,
                   const CxrRegisterOptions *options, CxrRegistration *out, GError **error)
{
  const CxrRegisterInputs none = { 0 };
  const CxrRegisterInputs *in = inputs ? inputs : &none;
  g_return_val_if_fail (fixed != NULL && moving != NULL && out != NULL, FALSE);
  gint64 t0 = g_get_monotonic_time ();
  CxrRegisterOptions opt;
  pair_begin (options, &opt, out);
  if (!check_options (&opt, error))
    return FALSE;
  g_autoptr (CxrRegisterFilm) F
      = cxr_register_film_new_lungs (fixed, in->fixed_aspect, in->fixed_lungs, &opt, error);
  if (F == NULL)
    {
      g_prefix_error (error, "fixed film: ");
      return FALSE;
    }
  g_autoptr (CxrRegisterFilm) M
      = cxr_register_film_new_lungs (moving, in->moving_aspect, in->moving_lungs, &opt, error);
  if (M == NULL)
    {
      g_prefix_error (error, "moving film: ");
      return FALSE;
    }
  g_debug ("register: pyramids %.1f ms", (g_get_monotonic_time () - t0) / 1e3);
  if (!cxr_register_films (F, M, &opt, out, error))
    return FALSE;
  out->elapsed_ms = (g_get_monotonic_time () - t0) / 1000.0;
  return TRUE;
}

gboolean
cxr_register_films (const CxrRegisterFilm *fixed, const CxrRegisterFilm *moving,
                    const CxrRegisterOptions *options, CxrRegistration *out, GError **error)
{
  g_return_val_if_fail (fixed != NULL && moving != NULL && out != NULL, FALSE);
  gint64 t0 = g_get_monotonic_time ();
  CxrRegisterOptions opt;
  pair_begin (options, &opt, out);
  if (fixed->nc != moving->nc || fixed->nf != moving->nf)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "films prepared with different grids (%d/%d and %d/%d px)", fixed->nc, fixed->nf,
                   moving->nc, moving->nf);
      return FALSE;
    }
  if (!check_options (&opt, error))
    return FALSE;
  const Pyr F = fixed->pyr, M = moving->pyr;
  /* Both directions on the same pyramids; the result is the midpoint of
   * the forward estimate and the inverse of the backward one, so that
   * registering B to A gives the inverse of registering A to B, and their
   * disagreement is evidence against the result. */
  gint64 tp1 = g_get_monotonic_time ();
  Raw fw, bw;
  double fm[2], fmb[2];
  gboolean has_fm = fourier_mellin (&F, &M, &opt, &fm[0], &fm[1]);
  fmb[0] = -fm[0];
  fmb[1] = 1 / fm[1];
  estimate (&F, &M, &opt, has_fm ? fm : NULL, &fw);
  gint64 tp2 = g_get_monotonic_time ();
  estimate (&M, &F, &opt, has_fm ? fmb : NULL, &bw);
  g_debug ("register: forward %.1f ms, backward %.1f ms", (tp2 - tp1) / 1e3,
           (g_get_monotonic_time () - tp2) / 1e3);
  /* Cross-seeding: each direction is also refined from the inverse of the
   * other's result, and keeps whichever correlates better, so that the two
   * disagree only where the films really admit different similarity fits. */
  int pw = fixed->width, ph = (int) lround (fixed->height * F.aspect);
  if (fw.ok && bw.ok && !directions_agree (&fw, &bw, &F, &M, pw, ph))
    {
      Pose a = raw_to_pose (&fw, &F, &M), b = raw_to_pose (&bw, &M, &F);
      Pose ai = pose_inverse (&a), bi = pose_inverse (&b);
      Sim sf = pose_to_sim (&bi, &F, &M), sb = pose_to_sim (&ai, &M, &F);
      double cf = polish (&F, &M, &sf, &opt), cb = polish (&M, &F, &sb, &opt);
      /* every pixel: the two may differ by less than sampling would */
      double cf0 = pyr_ncc (&F, &M, &fw.S, 1), cb0 = pyr_ncc (&M, &F, &bw.S, 1);
      if (cf > cf0)
        fw.S = sf;
      if (cb > cb0)
        bw.S = sb;
    }
  Pose t1 = raw_to_pose (&fw, &F, &M), t2 = raw_to_pose (&bw, &M, &F);
  Pose t2i = pose_inverse (&t2);
  Pose t = pose_midpoint (&t1, &t2i);

  /* Disagreement, in MOVING's pixels scaled to a 1024-px film, at the
   * centre and at four points of the lung fields. */
  double asym = disagreement (&t1, &t2i, pw, ph);
  asym *= 1024.0 / MAX (moving->width, moving->height * M.aspect);

  out->scale = t.s;
  out->angle_deg = t.theta * 180 / G_PI;
  out->dx_px = t.dx;
  out->dy_px = t.dy / M.aspect;
  out->fixed_aspect = F.aspect;
  out->moving_aspect = M.aspect;
  out->asymmetry_px = asym;
  out->psr = MIN (fw.psr, bw.psr);
  Sim S = pose_to_sim (&t, &F, &M);
  /* Agreement of the two directions tempers the correlation: a result
   * that depends on which film is fixed is not trusted. */
  double ncc_global = pyr_ncc (&F, &M, &S, 2);
  out->global_confidence = CLAMP (ncc_global, 0.0, 1.0) * exp (-asym / 10.0);

  double lim_a = opt.max_angle_deg > 90 ? 180 : opt.max_angle_deg;
  if (!fw.ok || !bw.ok || !isfinite (out->dx_px + out->dy_px + out->angle_deg + out->scale))
    out->reason = "refinement diverged";
  else if (fabs (out->angle_deg) > lim_a + 0.5)
    out->reason = "rotation outside the search limits";
  else if (!opt.fixed_scale
           && (hypot (S.a, S.b) < opt.min_scale * 0.99 || hypot (S.a, S.b) > opt.max_scale * 1.01))
    out->reason = "scale outside the search limits";
  /* a result that diverged or left the search limits is wrong; one of
   * low confidence may still line the lungs up, which the evidence says */
  gboolean broken = out->reason != NULL;
  if (broken)
    ;
  else if (asym > 16)
    out->reason = "forward and backward registrations disagree by more than 16 px";
  else if (out->global_confidence < opt.min_confidence)
    out->reason = "global confidence below min_confidence";

  /* The deformable stage, and the evidence the status rests on. */
  CxrRegisterOptions dopt = opt;
  dopt.no_deform |= broken;
  cxr__deform (&F, &M, fixed->width, fixed->height, &S, &dopt, out);
  /* A second start: the films as they lie. When the similarity found is
   * wrong (diverged, outside the limits) or ends no better aligned than
   * the films unmoved, the deformable stage also starts from the films
   * overlaid centre on centre, and the better of the two is kept. */
  if (broken || !(out->ncc_global > out->ncc_before))
    {
      CxrRegistration alt = *out;
      Sim ident = { 1, 0, 0, 0 };
      cxr__deform (&F, &M, fixed->width, fixed->height, &ident, &opt, &alt);
      if (alt.ncc_after > (broken ? -INFINITY : out->ncc_after))
        {
          Raw id = { ident, out->psr, TRUE };
          Pose ti = raw_to_pose (&id, &F, &M);
          *out = alt;
          out->scale = ti.s;
          out->angle_deg = 0;
          out->dx_px = ti.dx;
          out->dy_px = ti.dy / M.aspect;
          out->asymmetry_px = asym = 0;
          out->global_confidence = CLAMP (pyr_ncc (&F, &M, &ident, 2), 0.0, 1.0);
          out->reason = out->global_confidence < opt.min_confidence
                            ? "global confidence below min_confidence"
                            : NULL;
          broken = FALSE;
        }
    }
  gboolean lungs = !isnan (out->lung_dice_after);
  out->confidence = aligned_probability (out->ncc_after);
  if (broken || (!lungs && out->reason))
    out->status = CXR_REGISTER_FAILED;
  else if (!(out->ncc_after > out->ncc_before))
    {
      out->status = CXR_REGISTER_FAILED;
      out->reason = "no better aligned than the films overlaid unmoved";
    }
  else if (lungs && out->lung_dice_after < opt.ok_dice)
    {
      out->status = CXR_REGISTER_LOW_CONFIDENCE;
      out->reason = "the lung fields overlap by less than ok_dice after warping";
    }
  else if (out->confidence < opt.ok_confidence)
    {
      out->status = CXR_REGISTER_LOW_CONFIDENCE;
      out->reason = "confidence below ok_confidence: the films correlate too little after "
                    "registration to be more likely aligned than not";
    }
  else if (!lungs && asym > 4)
    {
      out->status = CXR_REGISTER_LOW_CONFIDENCE;
      out->reason = "forward and backward registrations disagree by more than 4 px";
    }
  else
    {
      out->status = CXR_REGISTER_OK;
      out->reason = NULL;
    }

  out->elapsed_ms = (g_get_monotonic_time () - t0) / 1000.0;
  return TRUE;
}
