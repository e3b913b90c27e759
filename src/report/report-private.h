/* SPDX-License-Identifier: MIT
 *
 * One patient's report, loaded once from the store (report.c) and
 * rendered as HTML (report-html.c) or JSON (report-json.c).
 */
#pragma once

#include <glib.h>

#include "cxr/report.h"
#include "cxr/signal.h"
#include "signal-private.h"
#include "store-private.h"

G_BEGIN_DECLS

/* A signal over the trend films, with a value at each. */
typedef struct {
  CxrSignal *signal;
  char *title;
  double *y;              /* a value per film of its set */
  gboolean flagged;       /* slow_progression, acute_change or unconfirmed_change */
  double limit;           /* the limit its flags use (NAN: none) */
  const CxrFlagRow *flag; /* its flag row for the set's view kind, or NULL */
} CxrReportTrend;

/* The trends of one view kind: its readable frontal films in visit order
 * (the more frequent view's set takes the films of unknown view too), and
 * every signal with a value at each. Flags compare films of one view, so
 * each view that has films to compare gets its own set. */
typedef struct {
  const char *view;      /* "PA" or "AP" */
  const char *time_axis; /* "days" or "visit" */
  int n;
  double *t;         /* n: days from the first film, or visit */
  int *visits;       /* n: each film's visit */
  GPtrArray *trends; /* CxrReportTrend */
} CxrReportTrendSet;

/* One thing that happened to the patient: the flags of one view that
 * rest on the same films (one step between two visits, or one trend over
 * the same visits), their signals inside. */
typedef struct {
  CxrTrendKind kind;
  const char *view;
  /* "worse" (a finding, a zone or a lung's area), "better" (improving),
   * "changed" (only distances from the first film, which give no
   * direction) */
  const char *direction;
  int from_visit, to_visit;
  GPtrArray *flags; /* const CxrFlagRow *, borrowed from the data's flags */
} CxrReportEvent;

typedef struct {
  char *patient_id;
  CxrPatientRow patient;
  GArray *films;   /* CxrReportFilm: every film, by visit */
  gint64 model_id; /* the latest model with results; 0: none */
  char *model_name, *model_sha256;
  char *store_path;    /* as shown on the page */
  char *artifacts_dir; /* artifact paths in the store are relative to it */
  GArray *flags;       /* CxrFlagRow: worsening first, then improving */
  /* CxrReportTrendSet: the patient's more frequent view kind first, then
   * the other if it has two readable films or more; none without a model. */
  GPtrArray *trend_sets;
  GArray *pairs;         /* CxrReportPair, by visit, previous first; */
  GPtrArray *pair_films; /* and per pair, its two films: fixed, moving, ... */
  CxrImageLimits limits; /* how the films are read (the store's DICOM window) */
  GArray *events;        /* CxrReportEvent: worse first, then changed, then better */
  /* "worse", "better", "stable", "mixed" (both ways, or change with no
   * direction) or "not_enough_films" (no view with two readable films) */
  const char *verdict;
} CxrReportData;

/* What a verdict without flags cannot rule out, measured on real
 * follow-up pairs (bench/change_types.py, docs/maps.md, "Signals read from
 * each film alone"): printed on every page and in every JSON summary, so
 * that "stable" is never read as "nothing changed". */
#define CXR_REPORT_DETECTION_LIMITS                                                                \
  "On real consecutive films of its development patients, changes put into the later film (a"      \
  " nodule up to 15 mm, a pleural effusion up to 5 cm high, a consolidation of 40 % of a zone,"    \
  " a 4 cm pneumothorax) were told from unchanged pairs at most 17 % of the time at 95 %"          \
  " specificity by any one of its maps and scores, and a heart widened by 15 % of the thorax 47 %" \
  " of the time: 'stable' and no flag do not mean that nothing changed. Compare the films."

const CxrReportFilm *cxr__report_film_at (const CxrReportData *d, int visit);
char *cxr__report_when (const CxrReportData *d, int visit);
char *cxr__report_signal_label (const char *signal);

CxrReportData *cxr__report_data_load (CxrStore *store, const char *patient_id, GError **error);
void cxr__report_data_free (CxrReportData *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrReportData, cxr__report_data_free)

GBytes *cxr__report_artifact (const CxrReportData *d, const char *path, GError **error);
guint cxr__report_missing_maps (const CxrReportData *d);

GString *cxr__report_html (const CxrReportData *d, CxrReportStats *stats);
char *cxr__report_json (const CxrReportData *d);
GString *cxr__report_index_html (int n_patients, int n_films, int n_flagged, const GArray *rows,
                                 const GArray *findings);

G_END_DECLS
