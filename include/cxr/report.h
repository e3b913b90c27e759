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

char *cxr_report_patient (CxrStore *store, const char *patient_id, const char *out_dir,
                          CxrReportFormat format, GError **error);
char *cxr_report_index (CxrStore *store, const char *out_dir, gboolean pages, guint *n_pages,
                        GError **error);

G_END_DECLS
