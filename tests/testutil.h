/* SPDX-License-Identifier: MIT
 *
 * What several cmocka tests share: a temporary folder for the group, and
 * one-value queries against a store.
 */
#pragma once

#include <glib.h>

#include "cxr/cxr.h"

static char *tmpdir;

static G_GNUC_UNUSED int
tmpdir_setup (void **state)
{
  tmpdir = g_dir_make_tmp ("cxr-test-XXXXXX", NULL);
  return tmpdir ? 0 : -1;
}

static G_GNUC_UNUSED int
tmpdir_teardown (void **state)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", tmpdir);
  assert_int_equal (system (cmd), 0);
  g_free (tmpdir);
  return 0;
}

/* The first column of the first row as text (NULL for SQL NULL). */
static G_GNUC_UNUSED char *
query_text (CxrStore *s, const char *sql)
{
  sqlite3_stmt *st = cxr_store_prepare (s, sql, NULL);
  assert_non_null (st);
  assert_int_equal (sqlite3_step (st), SQLITE_ROW);
  char *v = g_strdup ((const char *) sqlite3_column_text (st, 0));
  sqlite3_finalize (st);
  return v;
}

/* ... as an integer, -1 for SQL NULL. */
static G_GNUC_UNUSED gint64
query_int (CxrStore *s, const char *sql)
{
  sqlite3_stmt *st = cxr_store_prepare (s, sql, NULL);
  assert_non_null (st);
  assert_int_equal (sqlite3_step (st), SQLITE_ROW);
  gint64 v = sqlite3_column_type (st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64 (st, 0);
  sqlite3_finalize (st);
  return v;
}
