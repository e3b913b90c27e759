/* SPDX-License-Identifier: MIT
 *
 * CSV reader: quoting, line endings, BOM, blank lines, gzip, and the line
 * numbers that error messages rely on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <zlib.h>

#include <glib/gstdio.h>

#include "cxr/cxr.h"

static GPtrArray *
next_ok (CxrCsvReader *r)
{
  GPtrArray *f = NULL;
  g_autoptr (GError) err = NULL;
  assert_true (cxr_csv_reader_next (r, &f, &err));
  assert_null (err);
  return f;
}

#define FIELD(f, i) ((const char *) g_ptr_array_index ((f), (i)))

static void
test_quotes_and_endings (void **state)
{
  static const char text[] = "\xEF\xBB\xBF"
                             "a,b,c\r\n"
                             "\r\n"
                             "1,\"x, y\",\"say \"\"hi\"\"\"\r\n"
                             "\n"
                             "2,\"two\nlines\",z\n"
                             "3,,\r"
                             "4,last,";
  g_autoptr (CxrCsvReader) r = cxr_csv_reader_new_from_data ("t.csv", text, sizeof text - 1);
  GPtrArray *f = next_ok (r);
  assert_int_equal (f->len, 3);
  assert_string_equal (FIELD (f, 0), "a"); /* BOM gone */
  assert_int_equal (cxr_csv_reader_line (r), 1);
  f = next_ok (r);
  assert_int_equal (cxr_csv_reader_line (r), 3); /* blank line skipped, counted */
  assert_string_equal (FIELD (f, 1), "x, y");
  assert_string_equal (FIELD (f, 2), "say \"hi\"");
  f = next_ok (r);
  assert_int_equal (cxr_csv_reader_line (r), 5);
  assert_string_equal (FIELD (f, 1), "two\nlines");
  f = next_ok (r);
  assert_int_equal (cxr_csv_reader_line (r), 7); /* the quoted newline counted */
  assert_int_equal (f->len, 3);
  assert_string_equal (FIELD (f, 1), "");
  assert_string_equal (FIELD (f, 2), "");
  f = next_ok (r);
  assert_int_equal (f->len, 3); /* trailing comma: one more empty field */
  assert_string_equal (FIELD (f, 1), "last");
  g_autoptr (GError) err = NULL;
  assert_false (cxr_csv_reader_next (r, &f, &err));
  assert_null (err); /* clean end */
}

static void
test_unterminated_quote (void **state)
{
  static const char text[] = "a,b\n1,2\n3,\"open\n4,5\n";
  g_autoptr (CxrCsvReader) r = cxr_csv_reader_new_from_data ("bad.csv", text, sizeof text - 1);
  next_ok (r);
  next_ok (r);
  GPtrArray *f = NULL;
  g_autoptr (GError) err = NULL;
  assert_false (cxr_csv_reader_next (r, &f, &err));
  assert_non_null (err);
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_INVALID_INPUT));
  assert_non_null (strstr (err->message, "bad.csv:3:"));
}

/* A bad record is skipped whole, named by its line, and reading goes on. */
static void
test_bad_records_skipped (void **state)
{
  GString *t = g_string_new ("a,b\n1,2\n");
  g_string_append_len (t, "x\0y,3\n", 6);  /* line 3: NUL in field 1 */
  g_string_append (t, "4,\"");             /* line 4: over 1 MiB, quoted, */
  for (int i = 0; i < (1 << 20) + 10; i++) /* with a newline inside */
    g_string_append_c (t, i == 100 ? '\n' : 'z');
  g_string_append (t, "\"\n5,6\n"); /* line 6 */
  g_autoptr (CxrCsvReader) r = cxr_csv_reader_new_from_data ("bad.csv", t->str, t->len);
  next_ok (r);
  next_ok (r);
  GPtrArray *f = NULL;
  g_autoptr (GError) err = NULL;
  assert_false (cxr_csv_reader_next (r, &f, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_INVALID_INPUT));
  assert_string_equal (err->message, "bad.csv:3: field 1 holds a NUL byte (skipped)");
  g_clear_error (&err);
  assert_false (cxr_csv_reader_next (r, &f, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_LIMIT));
  assert_string_equal (err->message, "bad.csv:4: record longer than 1048576 bytes (skipped)");
  f = next_ok (r);
  assert_string_equal (g_ptr_array_index (f, 0), "5");
  assert_int_equal (cxr_csv_reader_line (r), 6);
  g_clear_error (&err);
  assert_false (cxr_csv_reader_next (r, &f, &err));
  assert_null (err); /* the end */
  g_string_free (t, TRUE);
}

static void
test_header_lookup (void **state)
{
  static const char text[] = " Image Index ,Patient ID\n";
  g_autoptr (CxrCsvReader) r = cxr_csv_reader_new_from_data ("h.csv", text, sizeof text - 1);
  GPtrArray *f = next_ok (r);
  assert_int_equal (cxr_csv_find_column (f, "image index"), 0);
  assert_int_equal (cxr_csv_find_column (f, "Patient ID"), 1);
  assert_int_equal (cxr_csv_find_column (f, "Follow-up #"), -1);
}

static void
test_gzip_file (void **state)
{
  g_autofree char *dir = g_dir_make_tmp ("cxr-csv-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "x.csv.gz", NULL);
  gzFile gz = gzopen (path, "wb");
  GString *s = g_string_new ("id,n\n");
  for (int i = 0; i < 20000; i++)
    g_string_append_printf (s, "%d,\"%d\"\n", i, i * 3);
  gzwrite (gz, s->str, (unsigned) s->len);
  gzclose (gz);
  g_string_free (s, TRUE);

  g_autoptr (GError) err = NULL;
  g_autoptr (CxrCsvReader) r = cxr_csv_reader_open (path, &err);
  assert_non_null (r);
  next_ok (r);
  GPtrArray *f;
  int n = 0;
  while (cxr_csv_reader_next (r, &f, &err))
    {
      assert_int_equal (atoi (FIELD (f, 1)), 3 * atoi (FIELD (f, 0)));
      n++;
    }
  assert_null (err);
  assert_int_equal (n, 20000);
  assert_true (cxr_csv_reader_progress (r) > 0.99);

  /* A truncated gzip stream is an error, not a silent short file. */
  g_autofree char *data = NULL;
  gsize len;
  assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_autofree char *cut = g_build_filename (dir, "cut.csv.gz", NULL);
  assert_true (g_file_set_contents (cut, data, (gssize) len / 2, NULL));
  g_autoptr (CxrCsvReader) r2 = cxr_csv_reader_open (cut, &err);
  assert_non_null (r2);
  while (cxr_csv_reader_next (r2, &f, &err))
    ;
  assert_non_null (err);
  assert_non_null (strstr (err->message, "cut.csv.gz"));
  g_unlink (cut);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_missing_file (void **state)
{
  g_autoptr (GError) err = NULL;
  assert_null (cxr_csv_reader_open ("/nonexistent/x.csv", &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_IO));
  assert_non_null (strstr (err->message, "/nonexistent/x.csv"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_quotes_and_endings), cmocka_unit_test (test_unterminated_quote),
    cmocka_unit_test (test_header_lookup),      cmocka_unit_test (test_gzip_file),
    cmocka_unit_test (test_missing_file),       cmocka_unit_test (test_bad_records_skipped),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
