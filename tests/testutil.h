/* SPDX-License-Identifier: MIT
 *
 * What several cmocka tests share: a temporary folder for the group,
 * one-value queries against a store, and the lung segmenter cxrtrack
 * ships.
 */
#pragma once

#include <string.h>

#include <glib.h>

#include "cxr/cxr.h"

static G_GNUC_UNUSED char *tmpdir;

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

/* A safetensors file in the group's folder from its JSON header and raw
 * data (the header's length first, 8 bytes little-endian). */
static G_GNUC_UNUSED char *
write_safetensors_raw (const char *name, const char *header, const guint8 *data, gsize n)
{
  g_autofree char *path = g_build_filename (tmpdir, name, NULL);
  GByteArray *b = g_byte_array_new ();
  guint64 hl = strlen (header);
  for (int i = 0; i < 8; i++)
    {
      guint8 c = (guint8) (hl >> (8 * i));
      g_byte_array_append (b, &c, 1);
    }
  g_byte_array_append (b, (const guint8 *) header, (guint) hl);
  g_byte_array_append (b, data, (guint) n);
  assert_true (g_file_set_contents (path, (const char *) b->data, b->len, NULL));
  g_byte_array_unref (b);
  return g_steal_pointer (&path);
}

/* The first row of a query: each column's type, number and text. */
typedef struct {
  int n_rows;
  int n;
  CxrValueType type[16];
  double real[16];
  char *text[16];
} FirstRow;

static G_GNUC_UNUSED void
first_row_cb (int n, const CxrValue *v, gpointer data)
{
  FirstRow *r = data;
  if (r->n_rows++ > 0)
    return;
  r->n = MIN (n, 16);
  for (int i = 0; i < r->n; i++)
    {
      r->type[i] = v[i].type;
      r->real[i] = v[i].real;
      r->text[i] = g_strdup (v[i].text); /* NULL for NULL and BLOB */
    }
}

static G_GNUC_UNUSED void
first_row_clear (FirstRow *r)
{
  for (int i = 0; i < r->n; i++)
    g_free (r->text[i]);
}

/* Runs @sql, which must return a row. */
static G_GNUC_UNUSED void
query_first_row (CxrStore *s, const char *sql, FirstRow *out)
{
  memset (out, 0, sizeof *out);
  const CxrQueryHandler h = { NULL, first_row_cb, NULL };
  g_autoptr (GError) err = NULL;
  assert_true (cxr_store_query (s, sql, &h, out, &err));
  assert_true (out->n_rows > 0);
}

/* The first column of the first row as text (NULL for SQL NULL). */
static G_GNUC_UNUSED char *
query_text (CxrStore *s, const char *sql)
{
  FirstRow r;
  query_first_row (s, sql, &r);
  char *v = g_steal_pointer (&r.text[0]);
  first_row_clear (&r);
  return v;
}

/* ... as an integer, -1 for SQL NULL. */
static G_GNUC_UNUSED gint64
query_int (CxrStore *s, const char *sql)
{
  FirstRow r;
  query_first_row (s, sql, &r);
  gint64 v = r.type[0] == CXR_VALUE_NULL ? -1 : (gint64) r.real[0];
  first_row_clear (&r);
  return v;
}

/* The lung segmenter cxrtrack ships (models/cxr-lungs.safetensors). */
static G_GNUC_UNUSED CxrLungModel *
shipped_lung_model (void)
{
  g_autofree char *p
      = g_build_filename (g_getenv ("CXR_SOURCE_ROOT"), "models", "cxr-lungs.safetensors", NULL);
  g_autoptr (GError) err = NULL;
  CxrLungModel *m = cxr_lung_model_load (p, &err);
  if (m == NULL)
    fail_msg ("%s", err->message);
  return m;
}
