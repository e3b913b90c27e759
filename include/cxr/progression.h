/* SPDX-License-Identifier: MIT
 *
 * Progression flags: slow change across a patient's visits that no single
 * pair shows, against limits derived from re-posed copies of real films.
 */
#pragma once

#include <glib.h>

#include "model.h"
#include "store.h"

G_BEGIN_DECLS

typedef struct {
  double alpha;          /* Mann-Kendall significance; default 0.05 */
  int confirm;           /* visits that must confirm an event; default 2 */
  double acute_factor;   /* acute limit = factor x test-retest limit; default 3, */
  double acute_share;    /* and at least this share of the series' largest rise; default 0.5 */
  int calib_films;       /* films used to derive the test-retest limits; default 20 */
  int calib_copies;      /* re-posed copies of each; default 2 */
} CxrProgressionOptions;

void cxr_progression_options_init (CxrProgressionOptions *options);
gboolean cxr_progression_load_config (const char *path, CxrProgressionOptions *options,
                                      GError **error);

typedef enum {
  CXR_TREND_INSUFFICIENT_VISITS,
  CXR_TREND_STABLE,
  CXR_TREND_SLOW_PROGRESSION,
  CXR_TREND_ACUTE_CHANGE,
  CXR_TREND_IMPROVING,
} CxrTrendKind;

typedef struct {
  CxrTrendKind kind;
  double tau, p_value, slope, slope_low, slope_high;  /* NAN when n < 3 */
  int event_index;      /* first visit (index) of a confirmed change beyond the limit, or -1 */
  int acute_index;      /* visit (index) of the largest step, if beyond the acute limit, else -1 */
  double max_step;      /* largest rise between consecutive visits */
  double acute_limit;   /* the acute limit applied (see acute_share) */
} CxrTrendResult;

const char *cxr_trend_kind_name (CxrTrendKind kind);
void cxr_progression_classify (const double *t, const double *y, int n, double limit,
                               double acute_limit, gboolean from_baseline,
                               const CxrProgressionOptions *options, CxrTrendResult *out);

gboolean cxr_progression_calibrate (CxrStore *store, const CxrModel *model, gint64 model_id,
                                    const CxrProgressionOptions *options, GError **error);
gboolean cxr_progression_flag_all (CxrStore *store, const CxrModel *model, gint64 model_id,
                                   const CxrProgressionOptions *options, gint64 run_id,
                                   guint64 *n_flagged, GError **error);

G_END_DECLS
