/* SPDX-License-Identifier: MIT
 *
 * Lung fields: a small U-Net (architecture cxr-lungnet, weights in a
 * safetensors file, models/cxr-lungs.safetensors by default) finds both
 * lung fields of a frontal film, and post-processing makes a mask users
 * can rely on: at the film's own size, the two largest components kept as
 * the right and left lung (image left = patient right), holes filled, a
 * quality and a status, so that a bad mask is never used unknowingly.
 * Convention (the training masks'): the lung behind the heart and below
 * the dome of the diaphragm is not lung field.
 */
#pragma once

#include <glib.h>

#include "image.h"

G_BEGIN_DECLS

typedef struct _CxrLungModel CxrLungModel;

CxrLungModel *cxr_lung_model_load (const char *path, GError **error);
void cxr_lung_model_free (CxrLungModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrLungModel, cxr_lung_model_free)

const char *cxr_lung_model_name (const CxrLungModel *model);
const char *cxr_lung_model_sha256 (const CxrLungModel *model);
const char *cxr_lung_model_metadata_json (const CxrLungModel *model);
int cxr_lung_model_input_size (const CxrLungModel *model);

/* The network alone: @input is input_size x input_size normalised floats
 * (cxr_lung_model_preprocess); returns the lung probability at each
 * input pixel (transfer full). Thread-safe. */
float *cxr_lung_model_preprocess (const CxrLungModel *model, const CxrImage *film);
float *cxr_lung_model_forward (const CxrLungModel *model, const float *input);

typedef enum {
  CXR_LUNGS_OK,
  CXR_LUNGS_IMPLAUSIBLE, /* the mask is not a pair of lungs: never used */
} CxrLungStatus;

typedef struct {
  int width, height;    /* the film's, px */
  guint8 *mask;         /* width x height: 1 patient's right lung (image left),
                                * 2 left lung, 0 neither */
  double right_area_px; /* px of the film */
  double left_area_px;
  double lung_fraction; /* both lungs over the film's area */
  int bbox_x0, bbox_y0; /* both lungs' bounding box, px, inclusive */
  int bbox_x1, bbox_y1;
  double quality; /* 0..1, see cxr_lungs_segment */
  CxrLungStatus status;
  const char *reason; /* why implausible, or NULL */
  /* "right" or "left": implausible because no lung was found on that side
   * while the other lung is plausible on its own (on its half of the film,
   * 4-30 % of its area, the network sure of it): a hemithorax without
   * aerated lung (an opaque lung, a large effusion, a collapse, a
   * pneumonectomy), or a segmentation that missed a lung. The mask is not
   * used to register or compare, but the areas are a measure: that side's
   * aerated lung is gone. NULL otherwise. */
  const char *airless_side;
  double cardiothoracic_ratio; /* the heart's width over the thorax's (lungs-heart.c); NAN
                                * where not measured */
  double elapsed_ms;
} CxrLungFields;

CxrLungFields *cxr_lungs_segment (const CxrLungModel *model, const CxrImage *film, GError **error);
void cxr_lungs_release_scratch (void);
void cxr_lung_fields_free (CxrLungFields *lungs);
CxrLungFields *cxr_lung_fields_rotate_180 (const CxrLungFields *lungs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrLungFields, cxr_lung_fields_free)

const char *cxr_lungs_status_name (CxrLungStatus status);
CxrImage *cxr_lungs_thorax_weight (const CxrLungFields *lungs);
double cxr_lungs_cardiothoracic_ratio (const CxrLungFields *lungs);
guint8 *cxr_lungs_cavity (const CxrLungFields *lungs);

G_END_DECLS
