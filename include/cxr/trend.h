/* SPDX-License-Identifier: MIT
 *
 * Trend statistics for one signal over a patient's visits, and the kinds
 * of trend a series is classified as (progression.c).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  int n;
  double s;       /* Mann-Kendall S: sum of sign(y_j - y_i), t_i < t_j */
  double var_s;   /* variance of S under no trend, ties in y corrected */
  double tau;     /* Kendall's tau-b */
  double z;       /* normal score with continuity correction */
  double p_value; /* two-sided; exact when n <= 10 and no ties */
  gboolean exact;
} CxrMannKendall;

typedef struct {
  double slope;     /* Theil-Sen: median of pairwise slopes */
  double intercept; /* median of y - slope t */
  double low, high; /* confidence interval of the slope (Sen 1968) */
} CxrTheilSen;

gboolean cxr_trend_mann_kendall (const double *t, const double *y, int n, CxrMannKendall *out);
gboolean cxr_trend_theil_sen (const double *t, const double *y, int n, double confidence,
                              CxrTheilSen *out);
int cxr_trend_event (const double *y, int n, double limit, int confirm);
int cxr_trend_min_visits (double alpha);

typedef enum {
  CXR_TREND_INSUFFICIENT_VISITS,
  CXR_TREND_STABLE,
  CXR_TREND_SLOW_PROGRESSION,
  CXR_TREND_ACUTE_CHANGE,
  CXR_TREND_IMPROVING,
  CXR_TREND_UNCONFIRMED_CHANGE, /* a step beyond the acute limit at the latest film */
} CxrTrendKind;

/* A series classified (cxr_progression_classify). */
typedef struct {
  CxrTrendKind kind;
  double tau, p_value, slope, slope_low, slope_high; /* NAN when n < 3 */
  int event_index; /* first visit (index) of a confirmed change beyond the limit, or -1 */
  int acute_index; /* visit (index) of the largest confirmed step beyond the acute limit, or -1 */
  int unconfirmed_index; /* the latest film, when its step is beyond the acute limit, or -1 */
  gboolean by_event;     /* slow_progression from event analysis (too few films for the trend
                          * test) */
  double max_step;       /* largest rise between consecutive visits */
  double acute_limit;    /* the acute limit applied (see acute_share) */
} CxrTrendResult;

const char *cxr_trend_kind_name (CxrTrendKind kind);

G_END_DECLS
