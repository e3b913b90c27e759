/* SPDX-License-Identifier: MIT
 *
 * Internals of ingest shared between its files, with the store and with
 * the tests.
 */
#pragma once

#include <glib.h>

#include "cxr/csv.h"
#include "cxr/ingest.h"
#include "store-private.h"

G_BEGIN_DECLS

/* Canonical fields; a source maps each to a CSV column (or none). */
typedef enum {
  F_IMAGE_INDEX,
  F_PATIENT_ID,
  F_VISIT,
  F_STUDY_DATE,
  F_DAY_OFFSET,
  F_AGE,
  F_SEX,
  F_VIEW,
  F_LABELS,
  F_PATH,
  F_ORIG_W,
  F_ORIG_H,
  F_SPACING_X,
  F_SPACING_Y,
  F_SPACING,
  N_FIELDS
} Field;

/* Reads a CSV's rows into scan records (ingest-row.c). */
typedef struct {
  gboolean nih; /* the NIH metadata; else a manifest */
  const CxrIngestOptions *opt;
  CxrIngestSummary *sum; /* where problems are noted */
  CxrCsvReader *csv;
  int col[N_FIELDS]; /* the column of each field, -1 none */
  char *base_dir;    /* the manifest's folder */
  GHashTable *files; /* basename -> path under the image roots */
} CxrRowReader;

gboolean cxr__row_reader_map_columns (CxrRowReader *rr, GPtrArray *header, GError **error);
void cxr__row_reader_index (CxrRowReader *rr, const char *dir, int depth);
gboolean cxr__row_reader_parse (CxrRowReader *rr, GPtrArray *row, CxrScanRecord *r);

/* Every regular file under a folder, in name order (ingest-walk.c). */
typedef struct _CxrFileWalker CxrFileWalker;
CxrFileWalker *cxr__file_walker_new (const char *root);
CxrFileWalker *cxr__file_walker_new_files (GPtrArray *paths);
void cxr__file_walker_free (CxrFileWalker *w);
char *cxr__file_walker_next (CxrFileWalker *w, gboolean follow_symlinks, CxrIngestSummary *sum);
/* Makes @r of the file at @path, or returns FALSE with *@refused the note
 * to make (its path and why it is not stored). */
typedef gboolean (*CxrFileReader) (gpointer data, const char *path, const CxrIngestOptions *opt,
                                   CxrScanRecord *r, char **why_invalid, char **refused);
gboolean cxr__file_walker_next_record (CxrFileWalker *w, CxrFileReader read, gpointer data,
                                       const CxrIngestOptions *opt, CxrIngestSummary *sum,
                                       CxrScanRecord *r, char **why_invalid);

/* The folder source: DIR/PATIENT/.../DATED-FILM.png (ingest-folder.c). */
typedef struct _CxrFolderWalker CxrFolderWalker;
CxrFolderWalker *cxr__folder_walker_new (const char *root);
void cxr__folder_walker_free (CxrFolderWalker *w);
gboolean cxr__folder_walker_next (CxrFolderWalker *w, const CxrIngestOptions *opt,
                                  CxrIngestSummary *sum, CxrScanRecord *r, char **why_invalid);

/* The DICOM source (ingest-dicom.c). */
typedef struct _CxrDicomWalker CxrDicomWalker;
CxrDicomWalker *cxr__dicom_walker_new (const char *root);
CxrDicomWalker *cxr__dicom_walker_new_files (GPtrArray *paths);
void cxr__dicom_walker_free (CxrDicomWalker *w);
gboolean cxr__dicom_walker_next (CxrDicomWalker *w, const CxrIngestOptions *opt,
                                 CxrIngestSummary *sum, CxrScanRecord *r, char **why_invalid);

gboolean cxr__ingest_is_chest (const char *body_part);

/* The films of a PACS, fetched into a cache folder (ingest-dicomweb.c). */
gboolean cxr__dicomweb_pull (CxrScanWriter *writer, const char *url, const char *cache,
                             const CxrIngestOptions *opt, CxrIngestSummary *sum, GPtrArray *files,
                             GError **error);

void cxr__ingest_note (CxrIngestSummary *sum, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
const char *cxr__ingest_view_kind (const char *view_position);
gboolean cxr__ingest_parse_date (const char *text, char out[11]);

G_END_DECLS
