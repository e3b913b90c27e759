/* SPDX-License-Identifier: MIT
 *
 * Trend statistics for one signal over a patient's visits.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  int n;
  double s;          /* Mann-Kendall S: sum of sign(y_j - y_i), t_i < t_j */
  double var_s;      /* variance of S under no trend, ties in y corrected */
  double tau;        /* Kendall's tau-b */
  double z;          /* normal score with continuity correction */
  double p_value;    /* two-sided; exact when n <= 10 and no ties */
  gboolean exact;
} CxrMannKendall;

typedef struct {
  double slope;      /* Theil-Sen: median of pairwise slopes */
  double intercept;  /* median of y - slope t */
  double low, high;  /* confidence interval of the slope (Sen 1968) */
} CxrTheilSen;

gboolean cxr_trend_mann_kendall (const double *t, const double *y, int n, CxrMannKendall *out);
gboolean cxr_trend_theil_sen (const double *t, const double *y, int n, double confidence,
                              CxrTheilSen *out);
int cxr_trend_event (const double *y, int n, double limit, int confirm);
int cxr_trend_min_visits (double alpha);

G_END_DECLS
