/* SPDX-License-Identifier: MIT
 *
 * Internals of the safetensors module: the half-float conversion, and a
 * writer the tests make their fixture models with.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

float cxr__half_to_float (guint16 h);

/* Writing (F32 only): names[i] with shapes[i] (ndims[i] dims) and data[i]. */
gboolean cxr__safetensors_write (const char *path, GHashTable *metadata, guint n,
                                 const char *const *names, const int *ndims,
                                 const gint64 *const *shapes, const float *const *data,
                                 GError **error);

G_END_DECLS
