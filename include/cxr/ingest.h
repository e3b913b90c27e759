/* SPDX-License-Identifier: MIT
 *
 * Ingest: metadata rows (NIH Data_Entry_2017.csv or a generic manifest)
 * plus the image files they name, a folder of DICOM files, or the films
 * of a PACS over DICOMweb, into the series store.
 */
#pragma once

#include <glib.h>

#include "image.h"
#include "shard.h"
#include "store.h"

G_BEGIN_DECLS

typedef struct _CxrIngestSummary CxrIngestSummary;

typedef void (*CxrIngestProgress) (const CxrIngestSummary *summary, double fraction,
                                   gpointer user_data);

/* What `ingest --dicomweb` asks of the PACS. */
typedef struct {
  const char *auth;            /* "user:password" or a bearer token, or NULL */
  const char *ca_file;         /* PEM CAs to verify the server with; NULL: the system's */
  const char *cache;           /* folder the films fetched are kept in; NULL:
                                * the store's path + ".dicomweb" */
  const char *since;           /* YYYY-MM-DD: only studies from then on, or NULL */
  const char *const *patients; /* only these Patient IDs (NULL-terminated), or NULL */
  double timeout_s;            /* a transfer receiving nothing this long is
                                * abandoned; <= 0: 60 s */
  GHashTable *study_counts;    /* (nullable) Study Instance UID -> its Number of
                                * Study Related Instances when last pulled whole:
                                * a study whose count the search still gives is
                                * not listed again (cxrtrack watch); updated */
} CxrDicomwebPull;

char *cxr_dicomweb_auth_read (const char *file, GError **error);

typedef struct {
  const char *const *image_roots; /* folders searched recursively for files */
  guint n_roots;
  CxrImageLimits limits;
  int jobs;                   /* decoding threads; <= 0: one per core */
  int batch_rows;             /* rows per transaction; <= 0: 2000 */
  const char *argv;           /* command line, for the runs table */
  gboolean follow_symlinks;   /* read films through links that leave the input
                                   * folders (default: refuse them) */
  const char *patient_prefix; /* prepended to every patient_id, or NULL */
  GHashTable *column_map;     /* manifest: canonical name -> CSV column */
  CxrShard shard;             /* only the patients of this shard (n = 0: all) */
  CxrDicomwebPull dicomweb;   /* ingest --dicomweb only */
  CxrIngestProgress progress; /* called from the calling thread */
  gpointer progress_data;
} CxrIngestOptions;

void cxr_ingest_options_init (CxrIngestOptions *options);

struct _CxrIngestSummary {
  guint64 n_rows;         /* data rows read */
  guint64 n_ok;           /* images decoded and stored as ok */
  guint64 n_missing;      /* rows stored with no file */
  guint64 n_invalid;      /* files stored as invalid */
  guint64 n_unchanged;    /* already stored, same content: nothing done */
  guint64 n_rejected;     /* rows not stored: bad or duplicate fields */
  guint64 n_conflicts;    /* same image_index, different content: kept the old */
  guint64 n_other_shards; /* rows of patients in other shards: not read */
  guint64 n_studies;      /* --dicomweb: studies with CR or DX films found */
  guint64 n_studies_same; /* --dicomweb: of them, unchanged since the last pull (study_counts) */
  guint64 n_fetched;      /* --dicomweb: instances retrieved in this run */
  guint64 n_known;        /* --dicomweb: instances already stored, not fetched */
  guint64 n_fetch_failed; /* --dicomweb: studies or instances the server failed */
  guint64 n_messages;     /* all problems seen; messages keeps the first ones */
  GPtrArray *messages;    /* (element-type utf8) */
  gint64 run_id;
  double elapsed_s;
};

#define CXR_INGEST_MAX_MESSAGES 50

void cxr_ingest_summary_init (CxrIngestSummary *summary);
void cxr_ingest_summary_clear (CxrIngestSummary *summary);

gboolean cxr_ingest_nih (CxrStore *store, const char *csv_path, const CxrIngestOptions *options,
                         CxrIngestSummary *summary, GError **error);
gboolean cxr_ingest_manifest (CxrStore *store, const char *manifest_path,
                              const CxrIngestOptions *options, CxrIngestSummary *summary,
                              GError **error);
gboolean cxr_ingest_dicom (CxrStore *store, const char *dir, const CxrIngestOptions *options,
                           CxrIngestSummary *summary, GError **error);
gboolean cxr_ingest_folder (CxrStore *store, const char *dir, const CxrIngestOptions *options,
                            CxrIngestSummary *summary, GError **error);
gboolean cxr_ingest_dicomweb (CxrStore *store, const char *url, const CxrIngestOptions *options,
                              CxrIngestSummary *summary, GError **error);

G_END_DECLS
