/* SPDX-License-Identifier: MIT
 *
 * Progression flags: slow change across a patient's visits that no single
 * pair shows, against limits derived from re-posed copies of real films.
 */
#pragma once

#include <glib.h>

#include "diff.h"
#include "lungs.h"
#include "model.h"
#include "severity.h"
#include "shard.h"
#include "store.h"
#include "trend.h"

G_BEGIN_DECLS

typedef struct {
  double alpha;        /* Mann-Kendall significance; default 0.05 */
  int confirm;         /* visits that must confirm an event; default 2 */
  double acute_factor; /* acute limit = factor x test-retest limit; default 3, */
  double acute_share;  /* and at least this share of the series' largest rise; default 0.5 */
  int calib_films;     /* films used to derive the test-retest limits; default 20 */
  int calib_copies;    /* re-posed copies of each; default 2 */
  CxrShard shard;      /* flag only this shard's patients (n = 0: all); the visit
                        * limits still come from every series of the store */
  /* calibration: also write every film/copy difference as CSV (film
   * sha256, signal, value) to this file; NULL: none */
  const char *samples_path;
  /* reference test-retest limits (tools/reference_limits.py), used while
   * the store has fewer films than the file's min_films; NULL: none */
  const char *reference_limits;
  /* the difference maps' region (analyze's): the trend score's limit is
   * derived from re-posed copies compared over the same region */
  CxrDiffRegion map_region;
} CxrProgressionOptions;

void cxr_progression_options_init (CxrProgressionOptions *options);
gboolean cxr_progression_load_config (const char *path, CxrProgressionOptions *options,
                                      GError **error);

/* What a signal's values are, for cxr_progression_classify. */
typedef enum {
  CXR_TREND_FROM_BASELINE = 1 << 0, /* a distance from the first film (0 there by definition) */
  CXR_TREND_RISE_ONLY = 1 << 1,     /* only a rise is read: a one-sided test, never improving */
} CxrTrendSignalFlags;

void cxr_progression_classify (const double *t, const double *y, int n, double limit,
                               double acute_limit, CxrTrendSignalFlags flags,
                               const CxrProgressionOptions *options, CxrTrendResult *out);

gboolean cxr_progression_calibrate (CxrStore *store, const CxrModel *model,
                                    const CxrLungModel *lung_model,
                                    const CxrSeverityModel *severity, gint64 model_id,
                                    const CxrProgressionOptions *options, GError **error);
gboolean cxr_progression_check_reference (const char *path, GError **error);
gboolean cxr_progression_flag_all (CxrStore *store, const CxrModel *model, gint64 model_id,
                                   const CxrProgressionOptions *options, gint64 run_id,
                                   guint64 *n_flagged, GError **error);

G_END_DECLS
