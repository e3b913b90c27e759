/* SPDX-License-Identifier: MIT
 *
 * cxrtrack's own single-precision matrix product for the convolutions, used
 * where the CPU has AVX-512 (checked at run time); OpenBLAS otherwise.
 */
#pragma once

#include <glib.h>

gboolean cxr__sgemm_own (void);
float *cxr__thread_buffer (GPrivate *key, gsize n);
void cxr__thread_buffer_free (gpointer data);
float *cxr__sgemm_pack_a (const float *a, int m, int k);
void cxr__sgemm_packed (int m, int n, int k, const float *ap, const float *b, int ldb, float *c,
                        int ldc);

/* B = im2col of a stride-1 convolution's input, never materialised: the
 * panels are packed straight from the input feature map. */
typedef struct {
  const float *in;      /* ci x h x w */
  int ci, h, w, k, pad; /* stride 1; output h + 2 pad - k + 1 square */
} CxrConvInput;

/* the largest kernel cxr__sgemm_conv() takes (larger: im2col) */
#define CXR_CONV_MAX_K 7

void cxr__sgemm_conv (int m, const float *ap, const CxrConvInput *x, float *c);
