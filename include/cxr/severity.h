/* SPDX-License-Identifier: MIT
 *
 * Severity as radiologists score it: the Brixia score (Borghesi & Maroldi
 * 2020). Each lung of a frontal film is cut into an upper, middle and lower
 * zone (A, B, C: the patient's right lung, image left; D, E, F: the left
 * lung), each scored 0 (clear) to 3 (alveolar predominance); the global is
 * their sum, 0-18. cxrtrack draws the zones from the lung fields and scores
 * each with a small head (weights in a safetensors file,
 * models/cxr-severity.safetensors, architecture cxr-brixia-ridge) over
 * features of the zone: its density against the film's own aerated lung,
 * how much of it is aerated, and the classifier's features and activation
 * maps pooled over it. The head reads the features of one classifier, whose
 * sha256 it names; scoring with another is refused.
 */
#pragma once

#include <glib.h>

#include "image.h"
#include "lungs.h"
#include "model.h"

G_BEGIN_DECLS

#define CXR_SEVERITY_ZONES 6

typedef struct _CxrSeverityModel CxrSeverityModel;

CxrSeverityModel *cxr_severity_model_load (const char *path, GError **error);
void cxr_severity_model_free (CxrSeverityModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrSeverityModel, cxr_severity_model_free)

const char *cxr_severity_model_name (const CxrSeverityModel *model);
const char *cxr_severity_model_sha256 (const CxrSeverityModel *model);
/* the sha256 of the classifier whose features the head reads */
const char *cxr_severity_model_classifier (const CxrSeverityModel *model);
gboolean cxr_severity_model_check (const CxrSeverityModel *model, const CxrModel *classifier,
                                   GError **error);

typedef enum {
  CXR_SEVERITY_OK,
  CXR_SEVERITY_IMPLAUSIBLE, /* the zones could not be drawn from the lung fields */
} CxrSeverityStatus;

typedef struct {
  /* each zone's rows (inclusive) and, per row, nothing else: a zone is
   * the rows of its band between that lung's outermost mask pixels */
  int y0[CXR_SEVERITY_ZONES], y1[CXR_SEVERITY_ZONES];
  double area_px[CXR_SEVERITY_ZONES];
  /* "thirds": equal thirds of each lung's height; "thirds-mirrored": an
   * airless side drawn as the other lung mirrored; "fixed": fractions of
   * the film, the lung fields being implausible */
  const char *method;
  int n_features;  /* per zone */
  float *features; /* CXR_SEVERITY_ZONES x n_features (cxr_severity_feature_name) */
  double score[CXR_SEVERITY_ZONES]; /* 0-3; NAN without a head */
  double global;                    /* 0-18; NAN without a head */
  CxrSeverityStatus status;
  const char *reason; /* why implausible, or NULL */
  double elapsed_ms;  /* zones, features and head, not the classifier or lungs */
} CxrSeverity;

CxrSeverity *cxr_severity_measure (const CxrSeverityModel *model, const CxrImage *film,
                                   const CxrLungFields *lungs, const CxrPrediction *prediction,
                                   GError **error);
void cxr_severity_free (CxrSeverity *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrSeverity, cxr_severity_free)

const char *cxr_severity_zone_name (int zone);  /* "A".."F" */
int cxr_severity_zone_index (const char *name); /* 0..5, or -1 ("global", ...) */
/* "right upper zone" ... for a zone's name, or "?" */
const char *cxr_severity_zone_label (const char *name);
const char *cxr_severity_status_name (CxrSeverityStatus status);
/* the name of feature @i of a zone for a classifier of @n_classes and
 * embedding @dim (transfer full) */
char *cxr_severity_feature_name (const CxrModel *classifier, int i);

G_END_DECLS
