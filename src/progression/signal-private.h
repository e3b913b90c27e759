/* SPDX-License-Identifier: MIT
 *
 * The signal table's rows (signal.c): what calibrate.c, progression.c and
 * the reports ask of a kind of signal. Adding a signal is a row there (and
 * the measure it reads, where that is new).
 */
#pragma once

#include "cxr/diff.h"
#include "cxr/image.h"
#include "cxr/lungs.h"
#include "cxr/severity.h"
#include "cxr/signal.h"
#include "store-private.h"

G_BEGIN_DECLS

/* A film and one re-posed, re-exposed copy of it, as calibrate.c reads
 * them: the classifier's predictions, the lung fields, the Brixia scores,
 * and (made by the first signal that needs it) the comparison of the two. */
typedef struct {
  const CxrModel *model;
  const CxrImage *film, *copy;
  const CxrPrediction *pf, *pc;
  const CxrLungFields *lf, *lc; /* NULL without a lung model */
  gboolean lungs_ok;            /* both plausible */
  const CxrSeverity *sf, *sc;   /* NULL without a severity head */
  CxrDiffRegion map_region;     /* compared as analyze compares (CxrProgressionOptions) */
  int compared;                 /* 0: not yet; 1: @diff holds it; -1: failed */
  CxrDiff diff;
} CxrRetest;

void cxr__retest_clear (CxrRetest *rt);

typedef enum {
  CXR_SIGNAL_NEEDS_LUNGS = 1 << 0,    /* a lung model */
  CXR_SIGNAL_NEEDS_SEVERITY = 1 << 1, /* a zone-score head */
} CxrSignalNeeds;

struct _CxrSignalClass {
  const char *kind;            /* the name, or its prefix before ":<finding>" */
  const char *const *findings; /* NULL-terminated; NULL: one signal, no finding */
  gboolean model_findings;     /* one signal per finding of the classifier */
  gboolean from_baseline, directional, one_scale, rise_only;
  double floor;
  const char *unit;
  const char *missing_why;
  double lo, hi;
  CxrSignalNeeds needs;
  int since_schema; /* the store version that has what @sql reads */
  /* the value at a film, one number or no row (see cxr__signal_reader_new):
   * ?1 the film, ?2 the first film of its series, ?3 the classifier's
   * model_id, ?4 the finding */
  const char *sql;
  /* |signal(copy) - signal(film)|, NAN where it has no value */
  double (*retest) (const CxrSignal *signal, CxrRetest *rt);
  /* the label for people, and for a flag's evidence */
  char *(*label) (const char *finding, gboolean evidence);
};

const CxrSignalClass *cxr__signal_class_of_name (const char *name, const char **finding);
gboolean cxr__signal_measurable (const CxrSignal *signal, gboolean lung_model, gboolean severity);
CxrSignalReader *cxr__signals_reader_new (CxrStore *store, gint64 model_id, GError **error);
gboolean cxr__signal_value (CxrSignalReader *r, const CxrSignal *signal, gint64 first_scan_id,
                            gint64 scan_id, double *value);
char *cxr__signal_evidence_label (const CxrSignal *signal);

G_END_DECLS
