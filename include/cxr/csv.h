/* SPDX-License-Identifier: MIT
 *
 * A streaming CSV reader (RFC 4180 plus the quirks of real files: UTF-8
 * BOM, CRLF or LF, blank lines, quoted fields with embedded commas,
 * quotes and newlines). Reads plain or gzip-compressed files, one record
 * at a time: memory use is bounded by the longest record.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CxrCsvReader CxrCsvReader;

/* Longest record accepted, in bytes; a longer one is a CXR_ERROR_LIMIT. */
#define CXR_CSV_MAX_RECORD_BYTES (1u << 20)

CxrCsvReader *cxr_csv_reader_open (const char *path, GError **error);
CxrCsvReader *cxr_csv_reader_new_from_data (const char *name, const char *data, gsize len);
void cxr_csv_reader_free (CxrCsvReader *reader);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrCsvReader, cxr_csv_reader_free)

gboolean cxr_csv_reader_next (CxrCsvReader *reader, GPtrArray **fields, GError **error);
guint cxr_csv_reader_line (const CxrCsvReader *reader);
const char *cxr_csv_reader_name (const CxrCsvReader *reader);
double cxr_csv_reader_progress (const CxrCsvReader *reader);

/* Header helpers: find a column by name (case-insensitive, trimmed). */
int cxr_csv_find_column (GPtrArray *header, const char *name);

G_END_DECLS
