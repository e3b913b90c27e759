/* SPDX-License-Identifier: MIT
 *
 * The SQLite series store: opening, forward-only migrations, runs, and
 * queries in SQL for cohort work (`cxrtrack sql`). The store owns every
 * statement: the stages of the pipeline ask it for plain C structs
 * (src/store/store-private.h) and hand their results back to be written.
 */
#pragma once

#include <glib.h>

#include "image.h"

G_BEGIN_DECLS

typedef struct _CxrStore CxrStore;

typedef enum {
  CXR_STORE_READ_WRITE = 0,
  CXR_STORE_READ_ONLY = 1 << 0, /* PRAGMA query_only: no statement may write */
  CXR_STORE_NO_CREATE = 1 << 1, /* the file must exist already */
} CxrStoreFlags;

CxrStore *cxr_store_open (const char *path, CxrStoreFlags flags, GError **error);
CxrStore *cxr_store_open_with_migrations (const char *path, CxrStoreFlags flags,
                                          const char *const *migrations, guint n_migrations,
                                          GError **error);
void cxr_store_free (CxrStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrStore, cxr_store_free)

const char *cxr_store_path (CxrStore *store);
const char *cxr_store_note (CxrStore *store);
char *cxr_store_artifacts_dir (CxrStore *store);
gboolean cxr_store_lock (CxrStore *store, const char *command, GError **error);
int cxr_store_schema_version (CxrStore *store);
int cxr_store_latest_version (void);
void cxr_store_set_timeout (CxrStore *store, double seconds);

gboolean cxr_store_exec (CxrStore *store, const char *sql, GError **error);
gboolean cxr_store_begin (CxrStore *store, GError **error);
gboolean cxr_store_commit (CxrStore *store, GError **error);
void cxr_store_rollback (CxrStore *store);

gint64 cxr_store_run_begin (CxrStore *store, const char *command, const char *argv, GError **error);
gboolean cxr_store_run_end (CxrStore *store, gint64 run_id, gboolean ok, GError **error);

/* Counts for a summary line. */
typedef struct {
  gint64 n_patients;
  gint64 n_patients_multi; /* with 2+ scans */
  gint64 n_scans;
  gint64 n_scans_ok;
} CxrStoreCounts;

gboolean cxr_store_counts (CxrStore *store, CxrStoreCounts *out, GError **error);

/* Queries: each statement of an SQL text in turn, its column names and
 * then its rows handed to a handler. */
typedef enum {
  CXR_VALUE_NULL,
  CXR_VALUE_INTEGER,
  CXR_VALUE_REAL,
  CXR_VALUE_TEXT,
  CXR_VALUE_BLOB,
} CxrValueType;

typedef struct {
  CxrValueType type;
  gint64 integer;
  double real;
  const char *text;   /* TEXT: UTF-8 as stored, NUL-terminated; INTEGER and
                              * REAL: as SQLite writes them ("0.168", "1.0") */
  const guint8 *blob; /* BLOB */
  gsize bytes;        /* TEXT and BLOB: length in bytes */
} CxrValue;

typedef struct {
  /* a statement begins (also one that returns no rows) */
  void (*columns) (int n, const char *const *names, gpointer data);
  void (*row) (int n, const CxrValue *values, gpointer data);
  /* the statement's rows are done */
  void (*end) (gpointer data);
} CxrQueryHandler;

gboolean cxr_store_query (CxrStore *store, const char *sql, const CxrQueryHandler *handler,
                          gpointer data, GError **error);

/* Film @image_index: its file and pixel aspect (register --db). */
gboolean cxr_store_find_film (CxrStore *store, const char *image_index, char **path, double *aspect,
                              GError **error);

/* cxrtrack merge: one source store into this one (store-merge.c) */
typedef struct {
  guint64 n_scans;             /* the source's films now in the store */
  guint64 n_new_scans;         /* ... of them new to it */
  guint64 n_conflicts;         /* left out: same name, other content */
  guint64 n_rows;              /* result rows written (upserted) */
  guint64 n_artifacts;         /* files linked or copied */
  guint64 n_artifacts_missing; /* named by the source's rows, not in its folder */
  gboolean skipped;            /* unchanged since it was merged last */
  guint64 n_messages;
  GPtrArray *messages; /* (element-type utf8) the first ones */
} CxrMergeSummary;

void cxr_merge_summary_init (CxrMergeSummary *summary);
void cxr_merge_summary_clear (CxrMergeSummary *summary);
gboolean cxr_store_merge (CxrStore *store, const char *source_path, gint64 run_id,
                          CxrMergeSummary *summary, GError **error);

gboolean cxr_store_has_model (CxrStore *store, const char *sha256, gboolean *known, GError **error);

/* The window the store's DICOM films were ingested with (CXR_VOI_FIRST
 * when it has none): analyze, calibration and reports read them alike. */
gboolean cxr_store_dicom_voi (CxrStore *store, CxrVoi *voi, gboolean *found, GError **error);

G_END_DECLS
