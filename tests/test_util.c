/* SPDX-License-Identifier: MIT
 *
 * The shared helpers (util.c): strict number parsing; safe names that two
 * different strings never share, that hold only letters, digits and
 * '.-_=', and whose length is bounded; a file opened only if it is a
 * regular one, never blocking on a FIFO.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cxr/cxr.h"
#include "testutil.h"
#include "util-private.h"

static void
test_parse (void **state)
{
  gint64 i;
  double d;
  assert_true (cxr__parse_int ("-42", &i) && i == -42);
  assert_false (cxr__parse_int ("", &i));
  assert_false (cxr__parse_int ("12x", &i));
  assert_false (cxr__parse_int ("99999999999999999999", &i));
  assert_true (cxr__parse_double ("0.168", &d) && d == 0.168);
  assert_false (cxr__parse_double ("1e400", &d));
  assert_false (cxr__parse_double ("nan", &d));
  assert_false (cxr__parse_double ("1,5", &d));
}

static void
test_safe_name (void **state)
{
  /* the ids of the hostile cases, and more: all different names */
  const char *ids[]
      = { "a/b",     "a_b", "a=2Fb", "a%2Fb", "x__y", "x",    "y__z", ".",
          "..",      "=2E", "a b",   "a\tb",  "é",    "\xff", "",     "00000001_000.png",
          "covid-10" };
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint k = 0; k < G_N_ELEMENTS (ids); k++)
    {
      char *n = cxr__safe_name (ids[k]);
      for (const char *p = n; *p; p++)
        assert_true (g_ascii_isalnum (*p) || strchr (".-_=~", *p));
      assert_true (n[0] != '.');
      if (g_hash_table_contains (seen, n))
        fail_msg ("'%s' gives '%s', like another id", ids[k], n);
      g_hash_table_add (seen, n);
    }
  g_autofree char *plain = cxr__safe_name ("00000001_000.png");
  assert_string_equal (plain, "00000001_000.png");
  g_autofree char *slash = cxr__safe_name ("a/b");
  assert_string_equal (slash, "a=2Fb");
  /* long ids: bounded, and still told apart (by their hash) */
  GString *a = g_string_new (NULL);
  for (int i = 0; i < 300; i++)
    g_string_append_c (a, i % 7 ? 'p' : '/');
  g_autofree char *la = cxr__safe_name (a->str);
  g_string_append_c (a, 'q');
  g_autofree char *lb = cxr__safe_name (a->str);
  assert_true (strlen (la) <= 96 && strlen (lb) <= 96);
  assert_string_not_equal (la, lb);
  assert_non_null (strchr (la, '~'));
  g_string_free (a, TRUE);
}

static void
test_open_regular (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *f = g_build_filename (tmpdir, "f", NULL);
  assert_true (g_file_set_contents (f, "abc", -1, NULL));
  goffset size = 0;
  int fd = cxr__open_regular (f, &size, &err);
  assert_true (fd >= 0);
  assert_int_equal (size, 3);
  close (fd);
  g_autofree char *fifo = g_build_filename (tmpdir, "fifo", NULL);
  assert_int_equal (mkfifo (fifo, 0600), 0);
  assert_int_equal (cxr__open_regular (fifo, NULL, &err), -1); /* returns at once */
  assert_non_null (strstr (err->message, "is a FIFO"));
  g_clear_error (&err);
  assert_int_equal (cxr__open_regular (tmpdir, NULL, &err), -1);
  assert_non_null (strstr (err->message, "is a folder"));
  g_clear_error (&err);
  assert_int_equal (cxr__open_regular ("/dev/zero", NULL, &err), -1);
  assert_non_null (strstr (err->message, "is a device"));
  g_clear_error (&err);
  assert_int_equal (cxr__open_regular ("/nonexistent", NULL, &err), -1);
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_IO));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_parse),
    cmocka_unit_test (test_safe_name),
    cmocka_unit_test (test_open_regular),
  };
  return cmocka_run_group_tests (tests, tmpdir_setup, tmpdir_teardown);
}
