/* SPDX-License-Identifier: MIT
 *
 * Ingest: CSV edge cases in the NIH format, visit order (the file-name
 * suffix must never decide it), manifests with dates and offsets, image
 * validation with broken files, idempotent re-runs, changed content and
 * completing a metadata-only store with files later.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <glib/gstdio.h>

#include "cxr/cxr.h"
#include "ingest-private.h"
#include "testutil.h"

static int counter;

static char *
write_file (const char *name, const char *text)
{
  char *p = g_build_filename (tmpdir, name, NULL);
  assert_true (g_file_set_contents (p, text, -1, NULL));
  return p;
}

static CxrStore *
new_store (void)
{
  g_autofree char *name = g_strdup_printf ("db%d.sqlite", counter++);
  g_autofree char *p = g_build_filename (tmpdir, name, NULL);
  g_autoptr (GError) err = NULL;
  CxrStore *s = cxr_store_open (p, 0, &err);
  assert_non_null (s);
  return s;
}

static gboolean
has_message (const CxrIngestSummary *sum, const char *needle)
{
  for (guint i = 0; i < sum->messages->len; i++)
    if (strstr (sum->messages->pdata[i], needle))
      return TRUE;
  return FALSE;
}

#define NIH_HEADER                                                                                 \
  "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"    \
  "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"

static void
test_nih_edge_cases (void **state)
{
  g_autofree char *csv = write_file (
      "edge.csv",
      "\xEF\xBB\xBF" NIH_HEADER "\r\n"
      "00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143\r\n"
      "00000001_001.png,\"Cardiomegaly|Emphysema\",1,1,58,M,PA,2894,2729,0.143,0.143\r\n"
      "\r\n"
      "00000002_000.png,No Finding,x,2,81,M,PA,2500,2048,0.171,0.171\r\n" /* line 5 */
      "00000003_000.png,Hernia,0,3\r\n"                                   /* short */
      "00000004_000.png,No Finding,0,4,77,F,AP,2500,2048,0.168,0.168,extra,cols\r\n"
      "00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143\r\n" /* line 8, dup */
      "00000005_000.png,No Finding,0,5,414,F,PA,2048,2500,0.168,0.168\r\n"  /* bad age */
      "00000006_000.png,No Finding,0,,30,F,PA,2048,2500,0.168,0.168\r\n");  /* no patient */
  g_autoptr (CxrStore) s = new_store ();
  CxrIngestOptions opt;
  cxr_ingest_options_init (&opt);
  CxrIngestSummary sum;
  cxr_ingest_summary_init (&sum);
  g_autoptr (GError) err = NULL;
  assert_true (cxr_ingest_nih (s, csv, &opt, &sum, &err));
  assert_int_equal (sum.n_rows, 8);
  assert_int_equal (sum.n_missing, 5);  /* no image roots: every stored row is missing */
  assert_int_equal (sum.n_rejected, 3); /* x follow-up, duplicate, empty patient */
  assert_true (has_message (&sum, "edge.csv:5: 'Follow-up #' is not a number: 'x'"));
  assert_true (has_message (&sum, "edge.csv:8: duplicate Image Index '00000001_000.png'"));
  assert_true (has_message (&sum, "edge.csv:9: 'Patient Age' is not a plausible age: '414'"));
  assert_true (has_message (&sum, "edge.csv:10: 'Patient ID' is empty"));
  assert_int_equal (query_int (s, "SELECT count(*) FROM scans"), 5);
  assert_int_equal (query_int (s, "SELECT count(*) FROM scans WHERE patient_id = '3'"), 1);
  assert_int_equal (query_int (s, "SELECT age_years IS NULL FROM scans WHERE patient_id = '5'"), 1);
  assert_int_equal (
      query_int (s, "SELECT count(*) FROM scan_findings WHERE scan_id ="
                    " (SELECT scan_id FROM scans WHERE image_index = '00000001_001.png')"),
      2);
  assert_int_equal (query_int (s, "SELECT n_scans FROM patients WHERE patient_id = '1'"), 2);
  g_autofree char *sp
      = query_text (s, "SELECT orig_spacing_y_mm FROM scans WHERE patient_id = '4'");
  assert_string_equal (sp, "0.168");
  assert_int_equal (query_int (s, "SELECT n_rejected FROM runs"), 3);
  assert_int_equal (query_int (s, "SELECT status = 'done' FROM runs"), 1);
  cxr_ingest_summary_clear (&sum);
}

static void
test_nih_missing_column (void **state)
{
  g_autofree char *csv = write_file ("nocol.csv", "Image Index,Patient ID\na.png,1\n");
  g_autoptr (CxrStore) s = new_store ();
  CxrIngestOptions opt;
  cxr_ingest_options_init (&opt);
  CxrIngestSummary sum;
  cxr_ingest_summary_init (&sum);
  g_autoptr (GError) err = NULL;
  assert_false (cxr_ingest_nih (s, csv, &opt, &sum, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_INVALID_INPUT));
  assert_non_null (strstr (err->message, "nocol.csv:1: no 'Follow-up #' column"));
  cxr_ingest_summary_clear (&sum);
}

static void
test_visit_order_ignores_suffix (void **state)
{
  /* The suffix says 001 < 003 < 005; Follow-up # says 005, 003, 001. */
  g_autofree char *csv = write_file (
      "order.csv", NIH_HEADER "\n"
                              "00000099_001.png,No Finding,2,99,50,F,PA,2048,2048,0.14,0.14\n"
                              "00000099_005.png,No Finding,0,99,49,F,PA,2048,2048,0.14,0.14\n"
                              "00000099_003.png,Effusion,1,99,49,F,AP,2048,2048,0.14,0.14\n");
  g_autoptr (CxrStore) s = new_store ();
  CxrIngestOptions opt;
  cxr_ingest_options_init (&opt);
  CxrIngestSummary sum;
  cxr_ingest_summary_init (&sum);
  g_autoptr (GError) err = NULL;
  assert_true (cxr_ingest_nih (s, csv, &opt, &sum, &err));
  g_autofree char *order = query_text (
      s,
      "SELECT group_concat(image_index, ' ') FROM (SELECT image_index FROM scans ORDER BY visit)");
  assert_string_equal (order, "00000099_005.png 00000099_003.png 00000099_001.png");
  assert_int_equal (query_int (s, "SELECT first_age_years FROM patients"), 49);
  assert_int_equal (query_int (s, "SELECT last_age_years FROM patients"), 50);
  cxr_ingest_summary_clear (&sum);
}

static void
test_manifest_dates_offsets (void **state)
{
  g_autofree char *csv
      = write_file ("m.csv", "patient_id,path,study_date,day_offset,view_position\n"
                             "a,a3.png,2020-03-05,,PA\n"
                             "a,a1.png,20200101,,PA\n" /* DICOM date form */
                             "a,a2.png,2020-02-01T10:00:00,,L\n"
                             "b,b2.png,,12.5,AP Supine\n"
                             "b,b1.png,,-3,AP\n"
                             "c,c1.png,2019-02-30,,PA\n" /* impossible date: rejected */
                             "d,d2.png,,,PA\n"           /* no order key: stored, noted */
                             "d,d1.png,,,PA\n");
  g_autoptr (CxrStore) s = new_store ();
  CxrIngestOptions opt;
  cxr_ingest_options_init (&opt);
  CxrIngestSummary sum;
  cxr_ingest_summary_init (&sum);
  g_autoptr (GError) err = NULL;
  assert_true (cxr_ingest_manifest (s, csv, &opt, &sum, &err));
  assert_int_equal (sum.n_rejected, 1);
  assert_true (has_message (&sum, "m.csv:7: 'study_date' is not an ISO 8601 date: '2019-02-30'"));
  assert_true (has_message (&sum, "no study date, day offset or visit for 'd2.png'"));
  g_autofree char *a
      = query_text (s, "SELECT group_concat(image_index || '@' || study_date, ' ')"
                       " FROM (SELECT * FROM scans WHERE patient_id = 'a' ORDER BY visit)");
  assert_string_equal (a, "a1.png@2020-01-01 a2.png@2020-02-01 a3.png@2020-03-05");
  g_autofree char *b
      = query_text (s, "SELECT group_concat(image_index, ' ') FROM"
                       " (SELECT * FROM scans WHERE patient_id = 'b' ORDER BY visit)");
  assert_string_equal (b, "b1.png b2.png");
  g_autofree char *d
      = query_text (s, "SELECT group_concat(image_index, ' ') FROM"
                       " (SELECT * FROM scans WHERE patient_id = 'd' ORDER BY visit)");
  assert_string_equal (d, "d1.png d2.png");
  g_autofree char *kinds = query_text (s, "SELECT group_concat(view_kind, ' ') FROM"
                                          " (SELECT * FROM scans ORDER BY patient_id, visit)");
  assert_string_equal (kinds, "PA lateral PA AP AP PA PA");
  /* No file was found: none of these films is offered for comparison. */
  assert_int_equal (
      query_int (s, "SELECT count(*) FROM patient_series"
                    " WHERE previous_scan_id IS NOT NULL OR baseline_scan_id IS NOT NULL"),
      0);
  cxr_ingest_summary_clear (&sum);
}

/* A manifest over good and broken files copied into a folder of its own. */
static char *
make_image_set (const char *sub)
{
  g_autofree char *dir = g_build_filename (tmpdir, sub, NULL);
  g_mkdir_with_parents (dir, 0755);
  const char *data = g_getenv ("CXR_TEST_DATA");
  const char *files[]
      = { "good/gray8.png",    "good/gray16.png", "good/rgba8.png", "good/interlaced8.png",
          "bad/truncated.png", "bad/bad_crc.png", "bad/empty.png" };
  GString *m = g_string_new ("patient_id,path,visit,view_position\n");
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *src = g_build_filename (data, files[i], NULL);
      g_autofree char *base = g_path_get_basename (files[i]);
      g_autofree char *dst = g_build_filename (dir, base, NULL);
      g_autofree char *contents = NULL;
      gsize len;
      assert_true (g_file_get_contents (src, &contents, &len, NULL));
      assert_true (g_file_set_contents (dst, contents, (gssize) len, NULL));
      g_string_append_printf (m, "p%u,%s,%u,PA\n", i % 2, base, i);
    }
  g_string_append (m, "p1,not_there.png,9,PA\n");
  g_autofree char *mp = g_build_filename (dir, "manifest.csv", NULL);
  assert_true (g_file_set_contents (mp, m->str, -1, NULL));
  g_string_free (m, TRUE);
  return g_steal_pointer (&mp);
}

static void
ingest_manifest (CxrStore *s, const char *manifest, int jobs, CxrIngestSummary *sum)
{
  CxrIngestOptions opt;
  cxr_ingest_options_init (&opt);
  opt.jobs = jobs;
  cxr_ingest_summary_init (sum);
  g_autoptr (GError) err = NULL;
  if (!cxr_ingest_manifest (s, manifest, &opt, sum, &err))
    fail_msg ("%s", err->message);
}

static void
test_images_idempotent_and_conflicts (void **state)
{
  g_autofree char *manifest = make_image_set ("imgs");
  g_autoptr (CxrStore) s = new_store ();
  CxrIngestSummary sum;
  ingest_manifest (s, manifest, 2, &sum);
  assert_int_equal (sum.n_ok, 4);
  assert_int_equal (sum.n_invalid, 3);
  assert_int_equal (sum.n_missing, 1);
  assert_true (has_message (&sum, "truncated.png: truncated PNG"));
  assert_true (has_message (&sum, "empty.png: empty file"));
  g_autofree char *why
      = query_text (s, "SELECT error FROM scans WHERE image_index = 'bad_crc.png'");
  assert_non_null (strstr (why, "CRC error"));
  g_autofree char *ct = query_text (
      s, "SELECT color_type || bit_depth FROM scans WHERE image_index = 'gray16.png'");
  assert_string_equal (ct, "gray16");
  g_autofree char *sha = query_text (s, "SELECT sha256 FROM scans WHERE image_index = 'gray8.png'");
  assert_int_equal (strlen (sha), 64);
  cxr_ingest_summary_clear (&sum);

  /* The same run again adds nothing. */
  ingest_manifest (s, manifest, 1, &sum);
  assert_int_equal (sum.n_ok + sum.n_invalid + sum.n_missing, 0);
  assert_int_equal (sum.n_unchanged, 8);
  assert_int_equal (query_int (s, "SELECT count(*) FROM scans"), 8);
  cxr_ingest_summary_clear (&sum);

  /* A stored film replaced by other content: reported, old one kept. */
  g_autofree char *dir = g_path_get_dirname (manifest);
  g_autofree char *g8 = g_build_filename (dir, "gray8.png", NULL);
  g_autofree char *g16 = g_build_filename (dir, "gray16.png", NULL);
  g_autofree char *contents = NULL;
  gsize len;
  assert_true (g_file_get_contents (g16, &contents, &len, NULL));
  assert_true (g_file_set_contents (g8, contents, (gssize) len, NULL));
  ingest_manifest (s, manifest, 2, &sum);
  assert_int_equal (sum.n_conflicts, 1);
  assert_true (has_message (&sum, "content differs from the stored 'gray8.png'"));
  g_autofree char *sha2
      = query_text (s, "SELECT sha256 FROM scans WHERE image_index = 'gray8.png'");
  assert_string_equal (sha, sha2);
  cxr_ingest_summary_clear (&sum);
}

static void
test_missing_then_found (void **state)
{
  g_autofree char *manifest = make_image_set ("later");
  g_autofree char *dir = g_path_get_dirname (manifest);
  g_autofree char *hidden = g_build_filename (tmpdir, "hidden.png", NULL);
  g_autofree char *g8 = g_build_filename (dir, "gray8.png", NULL);
  assert_int_equal (g_rename (g8, hidden), 0);
  g_autoptr (CxrStore) s = new_store ();
  CxrIngestSummary sum;
  ingest_manifest (s, manifest, 2, &sum);
  assert_int_equal (sum.n_missing, 2);
  cxr_ingest_summary_clear (&sum);
  gint64 visit = query_int (s, "SELECT visit FROM scans WHERE image_index = 'gray8.png'");
  assert_int_equal (g_rename (hidden, g8), 0);
  ingest_manifest (s, manifest, 2, &sum);
  assert_int_equal (sum.n_ok, 1);
  g_autofree char *st = query_text (s, "SELECT status FROM scans WHERE image_index = 'gray8.png'");
  assert_string_equal (st, "ok");
  assert_int_equal (query_int (s, "SELECT visit FROM scans WHERE image_index = 'gray8.png'"),
                    visit);
  assert_int_equal (query_int (s, "SELECT n_frontal FROM patients WHERE patient_id = 'p0'"), 2);
  cxr_ingest_summary_clear (&sum);
}

static void
test_helpers (void **state)
{
  assert_string_equal (cxr__ingest_view_kind ("PA"), "PA");
  assert_string_equal (cxr__ingest_view_kind ("AP Supine"), "AP");
  assert_string_equal (cxr__ingest_view_kind ("L"), "lateral");
  assert_string_equal (cxr__ingest_view_kind ("ll"), "lateral");
  assert_string_equal (cxr__ingest_view_kind ("LATERAL"), "lateral");
  assert_string_equal (cxr__ingest_view_kind (""), "unknown");
  char d[11];
  assert_true (cxr__ingest_parse_date ("2020-02-29", d));
  assert_string_equal (d, "2020-02-29");
  assert_false (cxr__ingest_parse_date ("2019-02-29", d));
  assert_false (cxr__ingest_parse_date ("2004", d));
  assert_false (cxr__ingest_parse_date ("2020-01-01x", d));
}

/* A manifest's original size and spacing: bad values are named with their
 * line and field and stored as NULL; the pixel aspect registration uses
 * (scan_pixel_aspect) is 1 where they are missing or absurd. */
static void
test_manifest_original_size (void **state)
{
  g_autofree char *csv = write_file (
      "orig.csv",
      "patient_id,path,visit,orig_width,orig_height,orig_spacing_x_mm,orig_spacing_y_mm\n"
      "a,a0.png,0,2500,2048,0.168,0.168\n" /* landscape: 2048/2500 */
      "a,a1.png,1,abc,2749,0.143,0.143\n"
      "a,a2.png,2,2894,-5,0.143,0.143\n"
      "a,a3.png,3,2000,2000,0.1,x\n"    /* y spacing taken as x's */
      "a,a4.png,4,3000,100,0.1,0.1\n"); /* absurd: 0.03 */
  g_autoptr (CxrStore) s = new_store ();
  CxrIngestOptions opt;
  cxr_ingest_options_init (&opt);
  CxrIngestSummary sum;
  cxr_ingest_summary_init (&sum);
  g_autoptr (GError) err = NULL;
  assert_true (cxr_ingest_manifest (s, csv, &opt, &sum, &err));
  assert_true (has_message (&sum, "orig.csv:3: 'orig_width' is not a positive number: 'abc'"));
  assert_true (has_message (&sum, "orig.csv:4: 'orig_height' is not a positive number: '-5'"));
  assert_true (has_message (&sum, "orig.csv:5: 'orig_spacing_y_mm' is not a positive number: 'x'"));
  g_autofree char *stored = query_text (s, "SELECT group_concat(coalesce(orig_width, '-') || 'x'"
                                           " || coalesce(orig_height, '-'), ' ') FROM"
                                           " (SELECT * FROM scans ORDER BY visit)");
  assert_string_equal (stored, "2500x2048 -x2749 2894x- 2000x2000 3000x100");
  /* no file was found, so no stored size: every aspect is 1 */
  assert_int_equal (query_int (s, "SELECT count(*) FROM scan_pixel_aspect WHERE pixel_aspect <> 1"),
                    0);
  /* as if each film had been stored at 1024 x 1024 */
  assert_true (cxr_store_exec (s, "UPDATE scans SET width = 1024, height = 1024", NULL));
  g_autofree char *aspects
      = query_text (s, "SELECT group_concat(x, ' ') FROM"
                       " (SELECT round(a.pixel_aspect, 4) AS x FROM scans s"
                       "  JOIN scan_pixel_aspect a USING (scan_id) ORDER BY s.visit)");
  assert_string_equal (aspects, "0.8192 1.0 1.0 1.0 1.0");
  cxr_ingest_summary_clear (&sum);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_nih_edge_cases),
    cmocka_unit_test (test_nih_missing_column),
    cmocka_unit_test (test_visit_order_ignores_suffix),
    cmocka_unit_test (test_manifest_dates_offsets),
    cmocka_unit_test (test_manifest_original_size),
    cmocka_unit_test (test_images_idempotent_and_conflicts),
    cmocka_unit_test (test_missing_then_found),
    cmocka_unit_test (test_helpers),
  };
  return cmocka_run_group_tests (tests, tmpdir_setup, tmpdir_teardown);
}
