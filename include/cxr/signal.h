/* SPDX-License-Identifier: MIT
 *
 * The signals followed over a patient's series, one table shared by the
 * progression flags, the test-retest limits and the reports: each
 * finding's probability, the embedding's cosine distance from the
 * series' first film, and the trend score against it (diff.h).
 */
#pragma once

#include <glib.h>

#include "model.h"

G_BEGIN_DECLS

typedef enum {
  CXR_SIGNAL_EMBEDDING_DISTANCE, /* cosine distance of the embedding from the first film's */
  CXR_SIGNAL_TREND_SCORE,        /* trend_score of the film against the first (ok rows only) */
  CXR_SIGNAL_PROBABILITY,        /* one finding's probability */
  CXR_SIGNAL_LUNG_AREA,          /* the share of one lung's area lost since the first film
                                  * (1 - area / first area; plausible lung fields only) */
  CXR_SIGNAL_SEVERITY,           /* the Brixia score: "global" (0-18) or one zone "A".."F"
                                  * (0-3), of films whose zones are plausible */
} CxrSignalKind;

typedef struct {
  CxrSignalKind kind;
  char *name;    /* as stored: "embedding_distance", "trend_score", "probability:<finding>" */
  char *finding; /* the finding (PROBABILITY), the side (LUNG_AREA), "global" or the zone
                  * (SEVERITY); else NULL */
  gboolean from_baseline;  /* a distance from the first film: its value there is 0 by definition */
  double limit_floor;      /* the test-retest limit's floor: the signal's resolution */
  const char *unit;        /* what a value is, for people: "probability", "0-18", ... */
  const char *missing_why; /* why a film of the series can have no value */
  double lo, hi;           /* the values it can take (NAN: unbounded), for plots */
} CxrSignal;

CxrSignal *cxr_signal_new (CxrSignalKind kind, const char *finding);
void cxr_signal_free (CxrSignal *signal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrSignal, cxr_signal_free)

GPtrArray *cxr_signals_for_model (const CxrModel *model);

G_END_DECLS
