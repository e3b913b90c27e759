/* SPDX-License-Identifier: MIT
 *
 * Registration of two films of one patient: rotation, scale and
 * translation (a similarity transform), with a confidence.
 *
 * Convention. Pixel (row i, column j) has its centre at x = j, y = i; an
 * image's centre is c = ((W-1)/2, (H-1)/2). If a point p of FIXED
 * (relative to FIXED's centre) appears in MOVING at
 *     p' = s R(theta) p + (dx, dy)      (p' relative to MOVING's centre)
 * with R(theta) = [[cos, -sin], [sin, cos]], registering MOVING to FIXED
 * reports angle_deg = theta in degrees, scale = s, dx_px = dx, dy_px = dy.
 * p is in FIXED's pixels and p' in MOVING's; for films of the same size
 * both are the full-resolution pixels of FIXED.
 *
 * Films of different sizes. The search runs in a common frame in which
 * each film (in the patient's proportions, see below) is fitted to the
 * same extent, its longer side spanning the grid; the scale limits
 * (min_scale, max_scale, fixed_scale) apply there. What is reported stays
 * pixel to pixel: MOVING stored at twice FIXED's size in the same pose
 * gives scale 2 and offsets in MOVING's pixels, which is what
 * cxr_register_point, cxr_register_offset and cxr_register_warp need
 * without knowing the sizes.
 *
 * Pixels that are not square. A film resized without keeping its aspect
 * (the NIH set: originals of 2500x2048, 2048x2500, 2992x2991 ... all
 * stored at 1024x1024) has pixels taller or wider than they are broad in
 * the patient. With the pixel aspects given (height over width of a pixel,
 * in the patient: fixed_aspect, moving_aspect), rotation and scale are
 * those of the patient, p is (x - cx, (y - cy) * fixed_aspect) in FIXED's
 * pixel widths, and p' likewise in MOVING's; (dx_px, dy_px) stays the
 * offset, in MOVING's pixels, of where FIXED's centre lands. With aspects 1
 * (the default) this is the convention above. cxr_register_point and
 * cxr_register_offset apply it.
 */
#pragma once

#include <glib.h>

#include "image.h"
#include "lungs.h"

G_BEGIN_DECLS

/* The method stored with each registration; /3: the scale search in the
 * common frame (films of different sizes); /4: the deformable stage
 * (bspl) and a status from the lungs' alignment. */
#define CXR_REGISTER_METHOD "fm-hyp-gn-sym-bspl/4"

typedef enum {
  CXR_REGISTER_OK,
  CXR_REGISTER_LOW_CONFIDENCE, /* usable with care: shown, flagged */
  CXR_REGISTER_FAILED,         /* never used for change maps */
} CxrRegisterStatus;

typedef struct {
  int coarse_size;           /* px of the top grid; the search grids are 1/2 and 1/4 of it
                           * (at least 64); default 256 */
  int fine_size;             /* px of a further Gauss-Newton grid; default 0 = none */
  double max_angle_deg;      /* search limit; default 15 */
  double min_scale;          /* default 0.8, in the common frame (above) */
  double max_scale;          /* default 1.25 */
  gboolean fixed_scale;      /* estimate rotation and translation only: scale 1
                           * in the common frame */
  double ok_confidence;      /* the confidence (below) >= this can be ok; default 0.5 */
  double min_confidence;     /* global confidence below this: failed without lung fields;
                              * default 0.3 */
  gboolean no_deform;        /* the global stage only */
  int deform_points;         /* control points of the deformable field per side; default 24 */
  double deform_lambda;      /* its bending penalty; default 0.05 */
  double ok_dice;            /* lung overlap after warping for ok; default 0.90 */
  double deform_lung_weight; /* the lung masks' weight in the deformable stage's matching
                              * (intensity units); default 0.2 */
  int deform_min_block;      /* its smallest block, px of the 256-px grid; default 16 */
  int deform_refine_steps;   /* after the blocks, steps of the intensities' own pull inside
                              * the lungs (register-deform.c); default 0 (off: it costs
                              * about 16 ms a pair at 20 steps) */
} CxrRegisterOptions;

/* What cxr_register_pair knows of the pair's two films (the options above
 * are the configuration, the same for every pair). */
typedef struct {
  double fixed_aspect; /* pixel height / width in the patient; 0 = square */
  double moving_aspect;
  const CxrLungFields *fixed_lungs;  /* the films' lung fields, */
  const CxrLungFields *moving_lungs; /* or NULL (then the thorax window) */
} CxrRegisterInputs;

void cxr_register_options_init (CxrRegisterOptions *options);

/* The deformable stage's displacement field: a uniform cubic B-spline
 * over FIXED's pixels. Control point (i, j) sits at x = (i - 1) hx,
 * y = (j - 1) hy with hx = (width - 1) / (nx - 3), hy = (height - 1) /
 * (ny - 3), so nx x ny points span the film; u(x, y) is in FIXED's
 * pixels. A point p of FIXED lands in MOVING where the global transform
 * takes p + u(p): the field corrects what a similarity cannot (breathing,
 * posture), and the global part stays what the convention above says. */
#define CXR_DEFORM_MAX 24

typedef struct {
  int nx, ny;                                /* control points across and down; 0: no field */
  float ux[CXR_DEFORM_MAX * CXR_DEFORM_MAX]; /* point (i, j) at [j * nx + i], FIXED px */
  float uy[CXR_DEFORM_MAX * CXR_DEFORM_MAX];
} CxrDeformField;

void cxr_deform_field_at (const CxrDeformField *field, int fixed_w, int fixed_h, double x, double y,
                          double *ux, double *uy);
/* The field at every point (xs[a], ys[b]) of FIXED: ux[b * nxs + a]. */
void cxr_deform_field_sample (const CxrDeformField *field, int fixed_w, int fixed_h,
                              const double *xs, int nxs, const double *ys, int nys, float *ux,
                              float *uy);

typedef struct {
  double dx_px; /* see the convention above */
  double dy_px;
  double angle_deg;
  double scale;
  double confidence;        /* 0..1: the chance that the films are aligned, calibrated on
                             * real pairs graded by eye (register.c, aligned_probability) */
  double global_confidence; /* the global stage's: its thorax-weighted structure NCC
                             * times exp(-asymmetry_px / 10) */
  CxrRegisterStatus status;
  /* NCC of the structure images inside FIXED's lung fields (both films'
   * lung fields known; else its thorax window, ncc_region says which): */
  double ncc_before;          /* the films overlaid centre on centre at the same extent */
  double ncc_global;          /* after the global stage */
  double ncc_after;           /* after the whole registration */
  const char *ncc_region;     /* "lungs" or "thorax" */
  double lung_dice_before;    /* overlap of FIXED's lung fields and MOVING's, overlaid */
  double lung_dice_after;     /* ... and warped; both NAN without both films' lung fields */
  gboolean deformable;        /* the deformable stage improved on the global one: field set */
  double rms_displacement_px; /* the field inside FIXED's lungs (or thorax window), FIXED px */
  double max_displacement_px;
  double jacobian_min; /* the field's local area change (det of the warp's Jacobian) inside */
  double jacobian_max; /* FIXED's lungs (or thorax window): 1 without a field */
  int folds;           /* grid points where the warp folds (Jacobian <= 0) */
  CxrDeformField field;
  double psr;          /* peak-to-sidelobe ratio of the translation correlation */
  double asymmetry_px; /* forward vs inverse of backward estimate, px of a 1024-px film */
  double elapsed_ms;
  const char *reason;  /* why low confidence or failed, or NULL */
  double fixed_aspect; /* the pixel aspects it was made with; 0 = square */
  double moving_aspect;
} CxrRegistration;

gboolean cxr_register_pair (const CxrImage *fixed, const CxrImage *moving,
                            const CxrRegisterInputs *inputs, const CxrRegisterOptions *options,
                            CxrRegistration *out, GError **error);

/* A film prepared for registration (its grids, structure images and
 * log-polar spectrum), to register it with several others without
 * preparing it again: cxr_register_pair is cxr_register_film_new for both
 * films, cxr_register_films, and two frees, with the same result. The
 * film's pixel aspect is @aspect (0 = square); of @options only
 * coarse_size and fine_size matter here, and cxr_register_films needs two
 * films prepared with the same ones. It ignores options->fixed_aspect and
 * moving_aspect (each film has its own), and its elapsed_ms leaves out the
 * preparation. The image need not outlive the prepared film. */
typedef struct _CxrRegisterFilm CxrRegisterFilm;

CxrRegisterFilm *cxr_register_film_new (const CxrImage *film, double aspect,
                                        const CxrRegisterOptions *options, GError **error);
CxrRegisterFilm *cxr_register_film_new_weighted (const CxrImage *film, double aspect,
                                                 const CxrImage *weight,
                                                 const CxrRegisterOptions *options, GError **error);
CxrRegisterFilm *cxr_register_film_new_lungs (const CxrImage *film, double aspect,
                                              const CxrLungFields *lungs,
                                              const CxrRegisterOptions *options, GError **error);
void cxr_register_film_free (CxrRegisterFilm *film);
gboolean cxr_register_films (const CxrRegisterFilm *fixed, const CxrRegisterFilm *moving,
                             const CxrRegisterOptions *options, CxrRegistration *out,
                             GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrRegisterFilm, cxr_register_film_free)

CxrImage *cxr_register_warp (const CxrImage *moving, const CxrRegistration *reg, int width,
                             int height);

void cxr_register_point (const CxrRegistration *reg, int fixed_w, int fixed_h, int moving_w,
                         int moving_h, double x, double y, double *mx, double *my);
void cxr_register_offset (const CxrRegistration *reg, double x, double y, double *mx, double *my);

const char *cxr_register_status_name (CxrRegisterStatus status);

G_END_DECLS
