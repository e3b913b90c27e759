/* SPDX-License-Identifier: MIT
 *
 * Layers of the CNN runtime (nn.c), shared by the models built from them.
 */
#pragma once

#include <glib.h>

#include "cxr/safetensors.h"

G_BEGIN_DECLS

typedef struct {
  int ci, co, k, stride, pad;
  float *w;  /* co x (ci k k) */
  float *b;  /* co, or NULL */
  float *wp; /* w packed for cxrtrack's own product (sgemm.c), or NULL */
} CxrConv;

typedef struct {
  int c;
  float *scale, *shift;
} CxrAffine;

typedef struct {
  CxrSafetensors *st;
  const char *path;
  GHashTable *used;
} CxrTensorLoader;

GMappedFile *cxr__safetensors_file (CxrSafetensors *st);
char *cxr__mapped_file_sha256 (GMappedFile *map);
void cxr__conv_clear (CxrConv *c);
void cxr__conv_pack (CxrConv *c);
void cxr__affine_clear (CxrAffine *a);

float *cxr__take (CxrTensorLoader *ld, const char *name, int ndim, const gint64 *shape,
                  GError **error);
gboolean cxr__take_bn (CxrTensorLoader *ld, const char *prefix, int c, CxrAffine *out,
                       GError **error);
gboolean cxr__take_conv (CxrTensorLoader *ld, const char *name, int ci, int co, int k, int stride,
                         int pad, CxrConv *out, GError **error);
void cxr__fold (CxrConv *c, const CxrAffine *bn);

void cxr__affine_relu (const CxrAffine *a, const float *in, gsize hw, float *out);
void cxr__max_pool2 (const float *in, int c, int n, float *out);
void cxr__upsample2 (const float *in, int c, int n, float *out);
void cxr__conv_forward (const CxrConv *c, const float *in, int h, int w, float *out, float *col,
                        gboolean relu);

G_END_DECLS
