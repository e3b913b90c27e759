/* SPDX-License-Identifier: MIT
 *
 * The cosine distance of two float vectors, the one definition used by
 * the C code (embeddings, feature maps) and by the SQL function
 * cosine_distance() (sqlfunc.c, also built as a loadable extension without
 * GLib: hence plain C here).
 */
#pragma once

#include <math.h>
#include <stddef.h>

/* 1 - a.b / (|a| |b|) over n elements stride apart; NAN when either vector
 * is zero (no direction: the distance is undefined, and NULL in SQL). */
static inline double
cxr__cosine_distance (const float *a, const float *b, int n, size_t stride)
{
  double ab = 0, aa = 0, bb = 0;
  for (int k = 0; k < n; k++)
    {
      double x = a[k * stride], y = b[k * stride];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
  return aa > 0 && bb > 0 ? 1 - ab / sqrt (aa * bb) : NAN;
}
