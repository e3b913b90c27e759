/* SPDX-License-Identifier: MIT
 *
 * Per-patient change reports (self-contained HTML, or JSON) and the cohort
 * index, from the store.
 */
#pragma once

#include <glib.h>

#include "shard.h"
#include "store.h"

G_BEGIN_DECLS

typedef enum { CXR_REPORT_HTML, CXR_REPORT_JSON } CxrReportFormat;

/* What writing reports found; each call adds to it. */
typedef struct {
  guint n_pages;             /* patient pages written */
  guint n_missing_artifacts; /* difference maps the store names that are not there */
  guint n_changed_films;     /* films whose file changed since ingest: not shown */
} CxrReportStats;

/* cxr_report_cohort: which pages, and how many at once */
typedef struct {
  gboolean pages;   /* patients' pages as well as the index */
  gboolean flagged; /* only the pages of flagged patients */
  int jobs;         /* pages written at once, each with its own connection; <= 0: one
                     * per core */
  CxrShard shard;   /* only this shard's patients' pages (n = 0: all) */
} CxrReportOptions;

char *cxr_report_page_name (const char *patient_id, CxrReportFormat format);
char *cxr_report_patient (CxrStore *store, const char *patient_id, const char *out_dir,
                          CxrReportFormat format, CxrReportStats *stats, GError **error);
char *cxr_report_index (CxrStore *store, const char *out_dir, gboolean pages, CxrReportStats *stats,
                        GError **error);
char *cxr_report_cohort (CxrStore *store, const char *out_dir, const CxrReportOptions *options,
                         CxrReportStats *stats, GError **error);

G_END_DECLS
