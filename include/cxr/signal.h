/* SPDX-License-Identifier: MIT
 *
 * The signals followed over a patient's series, one table shared by the
 * progression flags, the test-retest limits and the reports: each
 * finding's probability, the embedding's cosine distance from the
 * series' first film, the trend score against it (diff.h), the share of
 * each lung's area lost since it, and the Brixia scores (severity.h).
 * Each kind is a row of the table in src/progression/signal.c: its name,
 * unit and range, how re-posed copies measure it, the SQL that reads it
 * from a store and why a film can lack it.
 */
#pragma once

#include <glib.h>

#include "model.h"

G_BEGIN_DECLS

/* a row of the signal table (src/progression/signal-private.h) */
typedef struct _CxrSignalClass CxrSignalClass;

typedef struct {
  const CxrSignalClass *klass;
  char *name;    /* as stored: "embedding_distance", "trend_score", "probability:<finding>" */
  char *finding; /* the finding, the side ("right", "left"), "global" or a zone "A".."F"; or
                  * NULL */
  char *label;   /* for people: "Edema probability", "Brixia zone D (left upper zone)" */
  gboolean from_baseline;  /* a distance from the first film: its value there is 0 by definition */
  gboolean directional;    /* a rise is a worsening (not only a distance) */
  gboolean rise_only;      /* only a rise has a reading (a change of either sign counted):
                            * the trend test is one-sided, never "improving" */
  gboolean one_scale;      /* plotted on one scale with the others of its kind */
  double limit_floor;      /* the test-retest limit's floor: the signal's resolution */
  const char *unit;        /* what a value is, for people: "probability", "0-18", ... */
  const char *missing_why; /* why a film of the series can have no value */
  double lo, hi;           /* the values it can take (NAN: unbounded), for plots */
} CxrSignal;

CxrSignal *cxr_signal_new (const char *kind, const char *finding);
void cxr_signal_free (CxrSignal *signal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrSignal, cxr_signal_free)

GPtrArray *cxr_signals_for_model (const CxrModel *model);

G_END_DECLS
