/* SPDX-License-Identifier: MIT
 *
 * safetensors: an 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then
 * raw little-endian tensor data. Files are memory-mapped and validated in
 * full before any tensor is handed out.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum { CXR_DTYPE_F32, CXR_DTYPE_F16 } CxrDtype;

#define CXR_SAFETENSORS_MAX_DIMS   8
#define CXR_SAFETENSORS_MAX_HEADER (64u << 20)

typedef struct {
  const char *name;
  CxrDtype dtype;
  int ndim;
  gint64 shape[CXR_SAFETENSORS_MAX_DIMS];
  gsize numel;
  gsize offset; /* bytes from the start of the data section */
  gsize nbytes;
} CxrTensorInfo;

typedef struct _CxrSafetensors CxrSafetensors;

CxrSafetensors *cxr_safetensors_open (const char *path, GError **error);
void cxr_safetensors_free (CxrSafetensors *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrSafetensors, cxr_safetensors_free)

const CxrTensorInfo *cxr_safetensors_get (CxrSafetensors *st, const char *name);
guint cxr_safetensors_n_tensors (CxrSafetensors *st);
const char *cxr_safetensors_metadata (CxrSafetensors *st, const char *key);
gboolean cxr_safetensors_read_f32 (CxrSafetensors *st, const CxrTensorInfo *t, float *out);
const char *cxr_safetensors_sha256 (CxrSafetensors *st);

G_END_DECLS
