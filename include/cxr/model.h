/* SPDX-License-Identifier: MIT
 *
 * CNN inference for chest films: an embedding, one sigmoid probability per
 * finding, and a class activation map per finding, from weights in a
 * safetensors file (architectures: docs/classifier.md).
 */
#pragma once

#include <glib.h>

#include "image.h"

G_BEGIN_DECLS

typedef struct _CxrModel CxrModel;

typedef struct {
  int dim; /* embedding length */
  int n_classes;
  int map_w, map_h;   /* activation map size (feature resolution) */
  float *embedding;   /* dim: globally pooled features */
  float *probability; /* n_classes: sigmoid outputs */
  float *logit;       /* n_classes */
  float *cam;         /* n_classes * map_h * map_w: class activation (logit units) */
  float *features;    /* dim * map_h * map_w: final rectified features */
} CxrPrediction;

CxrModel *cxr_model_load (const char *path, GError **error);
void cxr_model_free (CxrModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrModel, cxr_model_free)

const char *cxr_model_name (const CxrModel *model);
const char *cxr_model_architecture (const CxrModel *model);
const char *cxr_model_sha256 (const CxrModel *model);
int cxr_model_input_size (const CxrModel *model);
int cxr_model_input_channels (const CxrModel *model);
int cxr_model_n_classes (const CxrModel *model);
int cxr_model_embedding_dim (const CxrModel *model);
const char *cxr_model_class_name (const CxrModel *model, int i);
char *cxr_model_metadata_json (const CxrModel *model);

/* Film -> input tensor (channels x size x size), as the model's metadata says. */
float *cxr_model_preprocess (const CxrModel *model, const CxrImage *film);
CxrPrediction *cxr_model_forward (const CxrModel *model, const float *input);
CxrPrediction *cxr_model_predict (const CxrModel *model, const CxrImage *film);

void cxr_prediction_free (CxrPrediction *p);
double cxr_model_cosine_distance (const float *a, const float *b, int n, gsize stride);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrPrediction, cxr_prediction_free)

G_END_DECLS
