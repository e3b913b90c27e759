/* SPDX-License-Identifier: MIT
 *
 * What the store offers the other modules of libcxr: plain C structs in
 * and out, no SQL. Ingest writes scans through a CxrScanWriter
 * (store-scans.c); the pipeline loads a patient's pending work and
 * writes its results through a CxrAnalysisWriter (store-analysis.c);
 * progression and report read series, signals and flags
 * (store-series.c, store-report.c).
 */
#pragma once

#include <glib.h>

#include "cxr/diff.h"
#include "cxr/image.h"
#include "cxr/lungs.h"
#include "cxr/model.h"
#include "cxr/register.h"
#include "cxr/severity.h"
#include "cxr/store.h"
#include "cxr/trend.h"

G_BEGIN_DECLS

/* --- runs ------------------------------------------------------------------ */

typedef struct {
  guint64 n_rows, n_ok, n_missing, n_invalid, n_unchanged, n_rejected, n_conflicts;
} CxrRunCounts;

gboolean cxr__store_run_counts (CxrStore *store, gint64 run_id, const CxrRunCounts *counts,
                                const char *messages, GError **error);

/* --- scans (ingest) -------------------------------------------------------- */

gboolean cxr__store_order_visits (CxrStore *store, GError **error);

/* One metadata row, as ingest parsed it. */
typedef struct {
  char *image_index, *patient_id, *study_date, *view_position, *sex, *labels;
  char *study_time;                 /* HH:MM:SS on study_date (DICOM), or NULL */
  char *path;                       /* resolved file, NULL when there is none */
  gint64 visit;                     /* source visit number, -1 unknown */
  double day_offset;                /* NAN unknown */
  double age_years;                 /* NAN unknown */
  gint64 orig_w, orig_h;            /* -1 unknown */
  double orig_sx, orig_sy, spacing; /* mm, NAN unknown */
  guint line;
  struct _CxrScanDicom *dicom; /* DICOM rows: the header's other attributes, or NULL */
} CxrScanRecord;

/* What dicom_scans holds for a DICOM row (owned by the record). */
typedef struct _CxrScanDicom {
  char *sop_class_uid, *study_instance_uid, *series_instance_uid, *study_date, *modality,
      *body_part, *laterality, *manufacturer, *photometric, *transfer_syntax;
  const char *date_source, *spacing_source, *voi; /* static strings */
  int bits_stored;                                /* -1 unknown */
} CxrScanDicom;

void cxr__scan_dicom_free (CxrScanDicom *d);

void cxr__scan_record_clear (CxrScanRecord *r);

/* A scan already in the store (scan_id 0: none). */
typedef struct {
  gint64 scan_id;
  char *sha256;
  char *status;
  gint64 run_id;
} CxrStoredScan;

void cxr__stored_scan_clear (CxrStoredScan *s);

/* What a decoded file adds to its row. */
typedef struct {
  const char *status;       /* "ok", "missing", "invalid" */
  const char *sha256;       /* or NULL */
  const CxrImageInfo *info; /* NULL when nothing was decoded */
  double spacing_mm;        /* of the stored film, NAN unknown */
  const char *error;        /* why invalid, or NULL */
  const char *view_kind;    /* "PA", "AP", "lateral", "unknown": ingest reads it from the
                             * view position; the store only binds it */
} CxrScanFile;

typedef struct _CxrScanWriter CxrScanWriter;

CxrScanWriter *cxr__scan_writer_new (CxrStore *store, gint64 run_id, int batch_rows,
                                     GError **error);
gboolean cxr__scan_writer_lookup (CxrScanWriter *w, const char *image_index, CxrStoredScan *out,
                                  GError **error);
gboolean cxr__scan_writer_add (CxrScanWriter *w, const CxrScanRecord *r, gint64 existing_id,
                               const CxrScanFile *file, GError **error);
gboolean cxr__scan_writer_finish (CxrScanWriter *w, GError **error);
void cxr__scan_writer_free (CxrScanWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrScanWriter, cxr__scan_writer_free)

/* --- analysis (pipeline) ------------------------------------------------- */

/* A frontal film to embed and score, or to find the lung fields of. */
typedef struct {
  gint64 scan_id;
  char *path;
  char *sha256; /* as ingested: the file must still have it */
  char *image_index;
  double spacing_mm; /* pixel width in the patient, NAN unknown */
  double aspect;     /* pixel height over width in the patient */
  int visit;         /* scans.visit (analysis rows; 0 elsewhere) */
} CxrFilmRow;

void cxr__film_row_clear (gpointer row);

/* A pair of films of one patient: to register (pending), registered by
 * an earlier run (stored), or whose difference map is still to make. */
typedef struct {
  gint64 fixed_id, moving_id;
  char *fixed_path, *moving_path;
  char *fixed_sha256, *moving_sha256; /* as ingested */
  gboolean is_previous, is_baseline;  /* one pair may be both (visit 1) */
  gboolean cross_view;                /* PA against AP */
  double fixed_aspect, moving_aspect; /* pixel height / width in the patient */
  CxrRegistration stored;             /* stored pairs: the transform and status */
  char *stem;                         /* with maps: artifact file name without extension */
  double fixed_spacing_mm;            /* with maps: of FIXED, NAN unknown */
  int fixed_visit, moving_visit;      /* scans.visit */
} CxrPairRow;

void cxr__pair_row_clear (gpointer row);

/* One patient's pending work. */
typedef struct {
  GArray *films;      /* CxrFilmRow: frontal films without the model's results */
  GArray *lung_films; /* CxrFilmRow: frontal films without the lung model's fields */
  GArray *pending;    /* CxrPairRow: to register, in visit order */
  GArray *stored;     /* CxrPairRow: earlier registrations with a transform */
  GArray *maps;       /* CxrPairRow: earlier registrations whose map is to make */
} CxrPatientWork;

void cxr__patient_work_init (CxrPatientWork *w);
void cxr__patient_work_clear (CxrPatientWork *w);

/* A model's row in the models table. */
typedef struct {
  const char *name, *architecture, *sha256;
  const char *classes;  /* '|'-separated */
  const char *metadata; /* JSON */
  int input_size, embedding_dim;
} CxrModelRow;

gint64 cxr__store_model_row (CxrStore *store, const CxrModelRow *row, GError **error);
/* The models of an analysis, by model_id (0: not used). */
typedef struct {
  gint64 classifier, lungs, severity;
} CxrModelIds;

GPtrArray *cxr__store_patients_with_work (CxrStore *store, const CxrModelIds *ids, gboolean maps,
                                          GError **error);
gboolean cxr__store_load_work (CxrStore *store, const char *patient_id, const CxrModelIds *ids,
                               gboolean maps, CxrPatientWork *out, GError **error);

typedef struct _CxrAnalysisWriter CxrAnalysisWriter;

CxrAnalysisWriter *cxr__analysis_writer_new (CxrStore *store, const CxrModel *model,
                                             const CxrModelIds *ids, gboolean maps, gint64 run_id,
                                             GError **error);
void cxr__analysis_writer_free (CxrAnalysisWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrAnalysisWriter, cxr__analysis_writer_free)

gboolean cxr__analysis_write_orientation (CxrAnalysisWriter *w, gint64 scan_id,
                                          const char *orientation, GError **error);
gboolean cxr__analysis_write_registration (CxrAnalysisWriter *w, const CxrPairRow *pair,
                                           const char *kind, const CxrRegistration *reg,
                                           double chain_px, const char *error_text,
                                           const char *method, GError **error);
gboolean cxr__analysis_write_prediction (CxrAnalysisWriter *w, gint64 scan_id,
                                         const CxrPrediction *p, GError **error);
gboolean cxr__analysis_write_severity (CxrAnalysisWriter *w, gint64 scan_id, const CxrSeverity *s,
                                       GError **error);
gboolean cxr__analysis_write_change (CxrAnalysisWriter *w, gint64 fixed_id, gint64 moving_id,
                                     const char *kind, const CxrDiff *d, const char *overlay_path,
                                     const char *map_path, double map_scale, const char *method,
                                     GError **error);

/* A film's lung fields as the analysis made them. */
typedef struct {
  const CxrLungFields *lungs;
  double right_area_mm2, left_area_mm2; /* NAN when the spacing is unknown */
  const char *mask_path;                /* relative to STORE.artifacts, or NULL */
} CxrLungRow;

gboolean cxr__analysis_write_lungs (CxrAnalysisWriter *w, gint64 scan_id, const CxrLungRow *row,
                                    GError **error);

/* --- series (progression, report) ----------------------------------------- */

/* A frontal film in a patient's series. */
typedef struct {
  gint64 scan_id;
  int visit;
  double day; /* study date as a Julian day, else day offset; NAN unknown */
  char *image_index;
  char *view_kind;
} CxrSeriesFilm;

void cxr__series_film_clear (gpointer film);

GArray *cxr__store_calibration_films (CxrStore *store, int n, GError **error);

typedef struct {
  const char *signal;
  double value;
  int n_copies;
} CxrLimitRow;

/* cxrtrack's reference limits (calibrate.c, tools/reference_limits.py) */
typedef struct {
  CxrLimitRow row;    /* signal, test-retest limit, copies */
  double visit_limit; /* the reference cohort's visit-to-visit limit, NAN none */
  int visit_pairs;
} CxrReferenceRow;

typedef struct {
  char *classifier; /* sha256 */
  int films, min_films;
  GHashTable *rows; /* signal -> CxrReferenceRow */
} CxrReference;

gboolean cxr__store_write_limits (CxrStore *store, gint64 model_id, const CxrLimitRow *rows,
                                  guint n, const char *method, GError **error);
/* A signal's limits: from re-posed copies (retest) and from the store's
 * consecutive visits (visit_limit, NAN when too few pairs). */
typedef struct {
  double retest;
  double visit_limit;
  int visit_pairs;
  gboolean reference;       /* the retest limit is cxrtrack's reference, not this store's own */
  gboolean visit_reference; /* the visit limit is the reference's: too few pairs here */
} CxrLimit;

GHashTable *cxr__store_limits (CxrStore *store, gint64 model_id, GError **error);
gint64 cxr__store_write_pair_signals (CxrStore *store, gint64 model_id, gint64 run_id,
                                      GError **error);
gboolean cxr__store_delete_limits (CxrStore *store, gint64 model_id, GError **error);
gint64 cxr__store_copy_limits (CxrStore *store, const char *from, gint64 model_id, GError **error);
gboolean cxr__store_write_visit_limits (CxrStore *store, gint64 model_id, GHashTable *limits,
                                        GError **error);
GPtrArray *cxr__store_flag_patients (CxrStore *store, GError **error);
GArray *cxr__store_frontal_series (CxrStore *store, const char *patient_id, GError **error);

/* A number per film of a series by queries prepared once: the signals'
 * values (progression/signal.c holds the queries). */
typedef struct _CxrSignalReader CxrSignalReader;

CxrSignalReader *cxr__signal_reader_new (CxrStore *store, gint64 model_id, const char *const *sql,
                                         guint n, GError **error);
void cxr__signal_reader_free (CxrSignalReader *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrSignalReader, cxr__signal_reader_free)
gboolean cxr__signal_reader_value (CxrSignalReader *r, guint query, gint64 first_scan_id,
                                   gint64 scan_id, const char *finding, double *value);

/* A progression flag row. */
typedef struct {
  char *signal;
  char *view_kind;
  CxrTrendKind kind;
  int n_visits, first_visit, last_visit;
  const char *time_axis;                             /* "days" or "visit" */
  double tau, p_value, slope, slope_low, slope_high; /* NAN unknown */
  double retest_limit, acute_limit;
  int event_visit; /* -1: none */
  char *evidence;
  const char *limit_source;           /* "retest" or "visits" */
  int step_from_visit, step_to_visit; /* acute or unconfirmed step, else -1 */
  char *left_out;                     /* films without a value, and why, or NULL */
} CxrFlagRow;

void cxr__flag_row_clear (gpointer row);

gboolean cxr__store_replace_flags (CxrStore *store, const char *patient_id, const GArray *flags,
                                   gint64 model_id, gint64 run_id, GError **error);

/* --- reports ----------------------------------------------------------------- */

typedef struct {
  char *sex;
  int n_scans, n_frontal;
  double first_age, last_age; /* NAN unknown */
} CxrPatientRow;

/* Any film of a patient, as a report shows it. */
typedef struct {
  gint64 scan_id;
  char *image_index, *view_kind, *view_position, *status, *error, *path, *labels, *sha256;
  char *lung_mask_path; /* its plausible lung fields' mask (in STORE.artifacts), or NULL */
  char *study_date;     /* as stored (ISO 8601), or NULL */
  gboolean upside_down; /* scans.orientation: analyze found it stored upside down */
  int visit;
  double day, age; /* NAN unknown */
  /* its Brixia score by the latest head (severity_status NULL: none) */
  char *severity_status; /* "ok" or "implausible" */
  double severity_global, zone_score[6];
} CxrReportFilm;

void cxr__report_film_clear (gpointer film);

typedef struct {
  gint64 fixed_id, moving_id;
  char *kind, *status, *reason, *overlay_path;
  gboolean overlay_missing; /* the store names a map that is not there */
  double map_scale;         /* overlay_path is the 8-bit map (schema 0015) with this
                             * scale; NAN: an overlay PNG made by an older version */
  double threshold;         /* the map's change threshold */
  gboolean outline;         /* compared inside the lung fields */
  gboolean cross_view;
  CxrRegistration reg; /* the transform (status not set) */
  double confidence;
  double change_score, changed_area_mm2; /* NAN: no map */
  /* pair_probability_change with the report's model (the largest row of
   * pair_probability_deltas): the finding whose probability moved most in
   * units of its limit, by how much (moving - fixed) and how many limits;
   * NULL / NAN without limits */
  char *prob_finding;
  double prob_delta, prob_change_limits;
  /* pair_probability_deltas: every finding whose probability moved beyond
   * its limit, the rises first, each by how many limits (the largest
   * change alone can be the wrong one to look at: across a change of view
   * the findings with the smallest limits shift most in them) */
  GArray *beyond; /* CxrReportDelta */
} CxrReportPair;

typedef struct {
  char *finding;
  double delta, in_limits;
} CxrReportDelta;

void cxr__report_pair_clear (gpointer pair);

gboolean cxr__store_patient (CxrStore *store, const char *patient_id, CxrPatientRow *out,
                             GError **error);
GArray *cxr__store_patient_films (CxrStore *store, const char *patient_id, GError **error);
gboolean cxr__store_film_severity (CxrStore *store, GArray *films, GError **error);
gint64 cxr__store_patient_model (CxrStore *store, const char *patient_id, char **name,
                                 char **sha256, GError **error);
GArray *cxr__store_patient_pairs (CxrStore *store, const char *patient_id, gint64 model_id,
                                  GError **error);
GArray *cxr__store_patient_flags (CxrStore *store, const char *patient_id, GError **error);
GPtrArray *cxr__store_model_findings (CxrStore *store, gint64 model_id, GError **error);

typedef struct {
  char *patient_id;
  int n_scans, n_frontal, n_flags;
  char *strongest, *signals;
  double min_p; /* NAN: none */
  gboolean has_pairs;
} CxrIndexRow;

void cxr__index_row_clear (gpointer row);

typedef struct {
  char *finding;
  int n_films, n_flagged;
} CxrFindingCount;

void cxr__finding_count_clear (gpointer row);

gboolean cxr__store_cohort_counts (CxrStore *store, int *patients, int *films, int *flagged,
                                   GError **error);
GArray *cxr__store_index_rows (CxrStore *store, GError **error);
GArray *cxr__store_finding_counts (CxrStore *store, GError **error);

G_END_DECLS
