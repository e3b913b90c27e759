/* SPDX-License-Identifier: MIT
 *
 * Fuzz entry point: the CSV reader and the row reader behind ingest
 * (cxr_csv_reader_next, cxr__row_reader_map_columns and _parse), in
 * manifest or NIH mode (the first byte's low bit), every record of the
 * input read to the end as ingest reads it.
 */
#include <stddef.h>
#include <stdint.h>

#include "cxr/cxr.h"
#include "ingest-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  CxrIngestOptions opt;
  cxr_ingest_options_init (&opt);
  CxrIngestSummary sum;
  cxr_ingest_summary_init (&sum);
  g_autoptr (CxrCsvReader) csv
      = cxr_csv_reader_new_from_data ("fuzz.csv", (const char *) data + 1, size - 1);
  CxrRowReader rr = { (data[0] & 1) != 0, &opt, &sum, csv };
  rr.base_dir = (char *) "/nonexistent";
  rr.files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  GPtrArray *row = NULL;
  if (cxr_csv_reader_next (csv, &row, NULL) && cxr__row_reader_map_columns (&rr, row, NULL))
    for (;;)
      {
        g_autoptr (GError) err = NULL;
        if (!cxr_csv_reader_next (csv, &row, &err))
          {
            if (err && !g_error_matches (err, CXR_ERROR, CXR_ERROR_IO))
              continue; /* a bad record: ingest goes on */
            break;
          }
        CxrScanRecord r = { 0 };
        cxr__row_reader_parse (&rr, row, &r);
        cxr__scan_record_clear (&r);
      }
  g_hash_table_unref (rr.files);
  cxr_ingest_summary_clear (&sum);
  return 0;
}
