/* SPDX-License-Identifier: MIT
 *
 * The lung a frontal film shows beyond the aerated lung fields (lungs.h).
 * The segmenter's fields stop at the heart's borders and at the domes of
 * the diaphragm (the convention of its training masks), but lung lies
 * behind the heart (the retrocardiac left lower lobe, a classic place to
 * miss a nodule) and below the domes (the posterior costophrenic
 * recesses reach lower than the domes' tops): about a quarter of the
 * lung a frontal film shows.
 *
 * Each lung's cavity is its field, and below the upper third of its
 * height, each row widened medially to the mediastinal line the upper
 * lung shows (the median of the medial edge over the rows from a sixth to
 * a third of the lung's height: the aortic arch and the superior vena
 * cava, outside the heart and lateral to the spine) and filled between
 * that line and the row's lateral edge, down to the lung's lowest row
 * (its costophrenic angle). The upper third keeps the field's own
 * outline: the apices are narrow, and widening them would take in the
 * trachea and the neck's soft tissue. A convex hull of each field was
 * tried first: it closes the heart's concavity only partly (the left
 * lung's hull runs from its apex to its lateral angle, well lateral of
 * the retrocardiac lung) and none of the lung below the domes medially.
 */
#include <math.h>

#include "cxr/lungs.h"
#include "util-private.h"

/* Each lung's extent per row: @lo[label][y], @hi[label][y] (hi < 0: none
 * in that row), one pass over the mask for both lungs. */
static void
row_extents (const CxrLungFields *l, int *lo[3], int *hi[3])
{
  int w = l->width;
  for (int y = 0; y < l->height; y++)
    {
      const guint8 *row = l->mask + (gsize) y * w;
      lo[1][y] = lo[2][y] = w;
      hi[1][y] = hi[2][y] = -1;
      for (int x = 0; x < w; x++)
        {
          int lab = row[x];
          if (lab == 1 || lab == 2)
            {
              if (hi[lab][y] < 0)
                lo[lab][y] = x;
              hi[lab][y] = x;
            }
        }
    }
}

/* Adds lung @label's cavity (1: the patient's right, image left; 2: the
 * left) to @out, where @out is still 0, from its row extents @lo, @hi. */
static void
add_cavity (const CxrLungFields *l, int label, int *lo, int *hi, guint8 *out)
{
  int w = l->width, h = l->height, top = h, bottom = -1;
  for (int y = 0; y < h; y++)
    if (hi[y] >= 0)
      {
        top = MIN (top, y);
        bottom = y;
      }
  if (bottom < 0)
    return;
  /* rows without the lung inside its span take the row above's extent */
  for (int y = top + 1; y <= bottom; y++)
    if (hi[y] < 0)
      {
        lo[y] = lo[y - 1];
        hi[y] = hi[y - 1];
      }
  int span = bottom - top + 1;
  int b0 = top + span / 6, b1 = top + span / 3;
  int n = b1 - b0 + 1;
  if (n < 1)
    return;
  /* the medial edge: the right lung's (image left) is its right end */
  g_autofree int *edge = g_new (int, n);
  for (int y = b0; y <= b1; y++)
    edge[y - b0] = label == 1 ? hi[y] : lo[y];
  qsort (edge, n, sizeof *edge, cxr__cmp_int);
  int line = edge[n / 2];
  /* only the rows below the upper third gain anything */
  for (int y = b1 + 1; y <= bottom; y++)
    {
      int a = label == 1 ? lo[y] : MIN (lo[y], line);
      int b = label == 1 ? MAX (hi[y], line) : hi[y];
      guint8 *row = out + (gsize) y * w;
      const guint8 *field = l->mask + (gsize) y * w;
      for (int x = MAX (a, 0); x <= MIN (b, w - 1); x++)
        if (row[x] == 0 && field[x] == 0)
          row[x] = (guint8) label;
    }
}

/**
 * cxr_lungs_cavity:
 * The lung the film shows: each lung field widened behind the heart and
 * down below the dome to its costophrenic angle (see above).
 *
 * Returns: (transfer full): width x height labels as the field's mask (1
 * the patient's right, 2 the left, 0 neither), every field pixel kept;
 * %NULL where the fields are not 'ok'.
 */
guint8 *
cxr_lungs_cavity (const CxrLungFields *l)
{
  if (l->status != CXR_LUNGS_OK || l->mask == NULL)
    return NULL;
  guint8 *out = g_memdup2 (l->mask, (gsize) l->width * l->height);
  g_autofree int *ext = g_new (int, (gsize) 4 * l->height);
  int *lo[3] = { NULL, ext, ext + l->height },
      *hi[3] = { NULL, ext + 2 * l->height, ext + 3 * l->height };
  row_extents (l, lo, hi);
  add_cavity (l, 1, lo[1], hi[1], out);
  add_cavity (l, 2, lo[2], hi[2], out);
  return out;
}
