/* SPDX-License-Identifier: MIT
 *
 * The analysis pipeline over a store: everything `cxrtrack analyze` does
 * (registration, inference, difference maps, progression flags), one
 * patient's series at a time.
 */
#pragma once

#include <glib.h>

#include "diff.h"
#include "image.h"
#include "lungs.h"
#include "model.h"
#include "progression.h"
#include "register.h"
#include "severity.h"
#include "store.h"

G_BEGIN_DECLS

typedef struct _CxrAnalyzeSummary CxrAnalyzeSummary;

typedef void (*CxrAnalyzeProgress) (const CxrAnalyzeSummary *summary, double fraction,
                                    gpointer user_data);

typedef struct {
  int jobs;         /* patients in parallel; <= 0: one per core */
  const char *argv; /* for the runs table */
  CxrRegisterOptions reg;
  CxrImageLimits limits;
  double max_transitivity_px; /* chain checks (register-chain.c), px of a 1024-px film; default 2 */
  const CxrModel *model;      /* embed and score films; NULL: registration only */
  const CxrSeverityModel *severity; /* score every frontal film's Brixia zones (with model) */
  const CxrLungModel *lung_model;   /* find every frontal film's lung fields, and use them in
                                   * registration and maps; NULL: the thorax window */
  gboolean no_diff;                 /* skip difference maps */
  gboolean map_deform;              /* the maps through the deformable field too; default: the
                                   * global transform (on synthetic growing nodules the field
                                   * halves what the trend finds; real pairs score alike) */
  CxrDiffOptions diff;              /* overlay_png and map_npy are set per pair */
  CxrProgressionOptions progression;
  CxrShard shard;                /* only this shard's patients (n = 0: all) */
  gboolean no_flags;             /* stop before the test-retest limits and flags (a shard
                            * of a cohort: they are derived after the merge) */
  const char *limits_from;       /* copy the test-retest limits from this store, or NULL */
  gboolean no_orientation_check; /* do not look for films stored upside down */
  CxrAnalyzeProgress progress;
  gpointer progress_data;
} CxrAnalyzeOptions;

void cxr_analyze_options_init (CxrAnalyzeOptions *options);

struct _CxrAnalyzeSummary {
  guint64 n_patients; /* with pending work */
  guint64 n_patients_done;
  guint64 n_pairs; /* registrations stored */
  guint64 n_ok, n_low, n_failed;
  guint64 n_cross_view;
  guint64 n_intransitive;      /* rows stored whose chain exceeded max_transitivity_px */
  guint64 n_pair_signals;      /* pair_signals rows written (registration-independent) */
  guint64 n_upside_down;       /* films found stored upside down */
  guint64 n_inferred;          /* films embedded and scored */
  guint64 n_lungs;             /* films whose lung fields were found */
  guint64 n_lungs_implausible; /* ... of them not plausible lungs */
  double lungs_ms;             /* summed over films */
  guint64 n_diffs;             /* pairs with difference maps */
  guint64 n_flagged;           /* patients with slow_progression or acute_change */
  double diff_ms;              /* summed over pairs */
  double infer_ms;             /* summed over films */
  guint64 n_messages;
  GPtrArray *messages;
  gint64 run_id;
  double elapsed_s;
  double register_ms;             /* summed over pairs */
  guint64 n_severity;             /* films whose Brixia zones were scored */
  guint64 n_severity_implausible; /* ... of them with zones not drawn from lung fields */
  double severity_ms;             /* summed over films: zones, features and head */
};

void cxr_analyze_summary_init (CxrAnalyzeSummary *summary);
void cxr_analyze_summary_clear (CxrAnalyzeSummary *summary);

gboolean cxr_pipeline_calibrate (CxrStore *store, const CxrAnalyzeOptions *options, gboolean force,
                                 GError **error);
gboolean cxr_pipeline_analyze (CxrStore *store, const CxrAnalyzeOptions *options,
                               CxrAnalyzeSummary *summary, GError **error);

G_END_DECLS
