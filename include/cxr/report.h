/* SPDX-License-Identifier: MIT
 *
 * Per-patient change reports (self-contained HTML, or JSON) and the cohort
 * index, from the store.
 */
#pragma once

#include <glib.h>

#include "store.h"

G_BEGIN_DECLS

typedef enum { CXR_REPORT_HTML, CXR_REPORT_JSON } CxrReportFormat;

/* What writing reports found; each call adds to it. */
typedef struct {
  guint n_pages;             /* patient pages written */
  guint n_missing_artifacts; /* difference maps the store names that are not there */
  guint n_changed_films;     /* films whose file changed since ingest: not shown */
} CxrReportStats;

char *cxr_report_page_name (const char *patient_id, CxrReportFormat format);
char *cxr_report_patient (CxrStore *store, const char *patient_id, const char *out_dir,
                          CxrReportFormat format, CxrReportStats *stats, GError **error);
char *cxr_report_index (CxrStore *store, const char *out_dir, gboolean pages, CxrReportStats *stats,
                        GError **error);

G_END_DECLS
