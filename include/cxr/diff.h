/* SPDX-License-Identifier: MIT
 *
 * Difference maps and change measures for a registered pair of films.
 */
#pragma once

#include <glib.h>

#include "image.h"
#include "lungs.h"
#include "model.h"
#include "register.h"

G_BEGIN_DECLS

/* The method stored with each difference map. */
#define CXR_DIFF_METHOD "qmatch-thorax-gauss-fixed/4"

typedef enum {
  CXR_DIFF_REGION_LUNG_FIELDS, /* the segmenter's aerated lung fields (mask_kind 'lungs') */
  CXR_DIFF_REGION_WHOLE_LUNG,  /* and the lung behind the heart and below the domes
                                * (cxr_lungs_cavity; mask_kind 'whole_lung') */
} CxrDiffRegion;

typedef struct {
  int size;                   /* working grid, px on the longer side; default 512 */
  double smooth_mm;           /* Gaussian sigma of the signed map; default 2 mm */
  double smooth_px;           /* ... when the pixel spacing is unknown: px of the film; default 6 */
  double min_threshold;       /* change threshold, intensity units (0..1); default 0.03 */
  double noise_k;             /* threshold = max(it, noise_k x robust sigma); default 0: fixed */
  double min_trend_threshold; /* the same for trend_score: default 0.015, */
  double trend_noise_k;       /* and multiple of sigma, default 0 */
  const CxrModel *model;      /* classifier for the feature and heatmap differences, or NULL */
  gboolean exposure_lungs;    /* match exposure inside the lungs alone (the old way), not over the
                            * thorax window */
  CxrDiffRegion region;       /* with both films' lung fields 'ok'; default the whole lung */
  double edge_shift_mm;       /* whole lung: the misalignment whose residue at FIXED's edges
                             * beyond the fields is weighed down; default 2 mm */
} CxrDiffOptions;

/* What is already known of a pair's two films (the options above are the
 * configuration, the same for every pair). */
typedef struct {
  const CxrPrediction *fixed_prediction;  /* the model's prediction of FIXED as a whole film, */
  const CxrPrediction *moving_prediction; /* and of MOVING, when already made; else made here */
  /* both 'ok': the comparison is confined to FIXED's whole lung, or with
   * CXR_DIFF_REGION_LUNG_FIELDS to FIXED's lung fields that MOVING's,
   * warped, also cover */
  const CxrLungFields *fixed_lungs;
  const CxrLungFields *moving_lungs;
  /* FIXED's whole lung (cxr_lungs_cavity of its lungs), when already
   * made; else made here */
  const guint8 *fixed_cavity;
} CxrDiffInputs;

/* The zones of the per-region measures: each lung (FIXED's right = image
 * left) in thirds of its height. */
#define CXR_DIFF_N_REGIONS 6
const char *cxr_diff_region_name (int region); /* "right_upper" ... "left_lower" */

void cxr_diff_options_init (CxrDiffOptions *options);

typedef struct {
  double change_score;     /* sum over changed pixels of (|d| - threshold), x px^2 of FIXED
                            * brought to 1024 px on its longer side (any film, one scale) */
  double change_energy;    /* mean d^2 inside the mask, x 1e4 */
  double changed_area_px;  /* px^2 of FIXED with |d| > threshold */
  double changed_area_mm2; /* NAN when the pixel spacing is unknown */
  double peak_x_px;        /* strongest change, FIXED's pixels */
  double peak_y_px;
  double peak_value;  /* signed d there */
  double threshold;   /* the threshold used */
  double trend_score; /* as change_score, at trend_threshold: the progression signal */
  double trend_threshold;
  double noise_sigma; /* robust sigma of d inside the mask (reported, not the threshold) */
  double region_score[CXR_DIFF_N_REGIONS];   /* change_score of each zone (lungs mask only) */
  double region_area_px[CXR_DIFF_N_REGIONS]; /* px^2 of FIXED of each zone; 0: none */
  double region_mean_d[CXR_DIFF_N_REGIONS];  /* signed mean of d there: + brighter now */
  double mask_area_px;                       /* px^2 of FIXED inside the mask */
  const char *mask_kind;     /* "lungs" (both films' lung fields), "whole_lung" (and the lung
                              * behind the heart and below the domes) or "thorax" (the window) */
  double feature_change;     /* mean cosine distance of the feature maps, or NAN */
  double embedding_distance; /* cosine distance of the two films' embeddings, or NAN */
  int n_classes;
  double *probability_delta; /* n_classes: moving - fixed, or NULL */
  double *heatmap_delta_max; /* n_classes: max of CAM(moving, carried to FIXED's cells
                              * through the registration) - CAM(fixed) */
  float *map;                /* map_width x map_height: the signed change d on the working
                              * grid, NAN where nothing was compared; the colour overlay
                              * is drawn from it */
  int map_width, map_height;
  double elapsed_ms;
} CxrDiff;

gboolean cxr_diff_pair (const CxrImage *fixed, const CxrImage *moving, const CxrRegistration *reg,
                        double fixed_spacing_mm, const CxrDiffInputs *inputs,
                        const CxrDiffOptions *options, CxrDiff *out, GError **error);
void cxr_diff_clear (CxrDiff *diff);

double cxr_diff_write_map (const CxrDiff *diff, const char *path, GError **error);
float *cxr_diff_read_map (const char *path, double scale, int *width, int *height, GError **error);
float *cxr_diff_decode_map (const char *name, const guint8 *data, gsize len, double scale,
                            int *width, int *height, GError **error);
guint8 *cxr_diff_render_overlay (const CxrImage *fixed, const float *map, int width, int height,
                                 double threshold, gboolean outline);

G_END_DECLS
