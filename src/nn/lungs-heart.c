/* SPDX-License-Identifier: MIT
 *
 * The heart's size read from the lung fields (lungs.h): the
 * cardiothoracic ratio, the widest transverse extent of the heart over the
 * widest inner width of the thorax, as radiologists measure it on a
 * frontal film (> 0.5 on a PA film is an enlarged heart; an AP film
 * magnifies the heart, so a series compares films of one view).
 *
 * The segmenter's fields are the aerated lungs, so their medial edges are
 * the heart's borders where the heart meets the lungs: the right heart
 * border is the right lung's medial edge (image left), the left heart
 * border the left lung's. Over the rows from 50 % to 80 % of the lungs'
 * height, where the heart is widest, the right border is taken at the
 * 25th percentile of the right lung's medial edge (towards the patient's
 * right) and the left border at the 75th percentile of the left lung's
 * (towards the left): a quartile, not the extreme row, because the
 * segmenter's edge wanders by a few pixels from row to row and film to
 * film (the extreme made re-posed copies of a film differ by 0.13 at the
 * 95th percentile, the quartile by 0.04). Rows where a lung is narrower
 * than 30 % of its widest row are left out (near the domes a lung tapers
 * to a thin lateral recess whose medial edge is not the heart's). The
 * thorax's width is the widest row across both lungs' outer edges
 * (inside the ribs).
 *
 * The window, the width cut and the quartile were chosen on the
 * even-numbered patients of NIH train256: the best AUROC for the
 * Cardiomegaly label among the variants whose re-posed copies move the
 * ratio by at most 0.04 at the 95th percentile; the odd-numbered patients
 * and series1024 are the figures to trust (bench/heart_size.py;
 * docs/lungs.md, "Heart size").
 */
#include <math.h>

#include "cxr/lungs.h"
#include "util-private.h"

#define HEART_ROWS_FROM 0.5 /* of the lungs' height, from their top */
#define HEART_ROWS_TO   0.8
#define HEART_MIN_WIDTH 0.3  /* of the lung's widest row */
#define HEART_QUANTILE  0.25 /* of each border's rows, towards its side */

/**
 * cxr_lungs_cardiothoracic_ratio:
 * Returns: the cardiothoracic ratio the fields show, or NAN where they
 * are not plausible or do not border the heart in the rows read.
 */
double
cxr_lungs_cardiothoracic_ratio (const CxrLungFields *l)
{
  if (l->status != CXR_LUNGS_OK || l->bbox_x1 < 0)
    return NAN;
  int w = l->width, y0 = l->bbox_y0, h = l->bbox_y1 - l->bbox_y0 + 1;
  /* per row of the lungs' box: the right lung's medial edge and width,
   * the left lung's medial edge and width */
  g_autofree double *r_medial = g_new (double, h), *l_medial = g_new (double, h);
  g_autofree int *r_width = g_new0 (int, h), *l_width = g_new0 (int, h);
  int thorax = 0, r_widest = 0, l_widest = 0;
  for (int j = 0; j < h; j++)
    {
      const guint8 *row = l->mask + (gsize) (y0 + j) * w;
      int x0 = -1, x1 = -1;
      r_medial[j] = -1;
      l_medial[j] = w;
      for (int x = l->bbox_x0; x <= l->bbox_x1; x++)
        {
          if (row[x] == 0)
            continue;
          if (x0 < 0)
            x0 = x;
          x1 = x;
          if (row[x] == 1)
            {
              r_medial[j] = x;
              r_width[j]++;
            }
          else
            {
              l_medial[j] = MIN (l_medial[j], x);
              l_width[j]++;
            }
        }
      if (x0 >= 0)
        thorax = MAX (thorax, x1 - x0 + 1);
      r_widest = MAX (r_widest, r_width[j]);
      l_widest = MAX (l_widest, l_width[j]);
    }
  /* the medial edges of the rows read, kept in place */
  int nr = 0, nl = 0;
  for (int j = (int) (HEART_ROWS_FROM * h); j < (int) (HEART_ROWS_TO * h); j++)
    {
      if (r_width[j] > 0 && r_width[j] >= HEART_MIN_WIDTH * r_widest)
        r_medial[nr++] = r_medial[j];
      if (l_width[j] > 0 && l_width[j] >= HEART_MIN_WIDTH * l_widest)
        l_medial[nl++] = l_medial[j];
    }
  if (nr == 0 || nl == 0 || thorax == 0)
    return NAN;
  double right_border = cxr__quantile (r_medial, nr, HEART_QUANTILE);
  double left_border = cxr__quantile (l_medial, nl, 1 - HEART_QUANTILE);
  double heart = left_border - right_border - 1;
  return heart > 0 ? heart / thorax : NAN;
}
