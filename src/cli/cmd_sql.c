/* SPDX-License-Identifier: MIT
 *
 * cxrtrack sql: cohort queries against the store. Read-only by default
 * (PRAGMA query_only), so a mistyped UPDATE cannot damage a study; --write
 * lifts that. Several statements may be given; each one's rows are printed
 * as an aligned table, CSV (RFC 4180) or JSON (an array of objects).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cxr/cxr.h"

typedef enum { FMT_TABLE, FMT_CSV, FMT_JSON } Format;

static void
json_string (GString *out, const char *s, int n)
{
  g_string_append_c (out, '"');
  for (int i = 0; i < n; i++)
    {
      unsigned char c = (unsigned char) s[i];
      switch (c)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default:
          if (c < 0x20)
            g_string_append_printf (out, "\\u%04x", c);
          else
            g_string_append_c (out, (char) c);
        }
    }
  g_string_append_c (out, '"');
}

static void
csv_field (GString *out, const char *s)
{
  if (strpbrk (s, ",\"\r\n") == NULL)
    {
      g_string_append (out, s);
      return;
    }
  g_string_append_c (out, '"');
  for (const char *p = s; *p; p++)
    {
      if (*p == '"')
        g_string_append_c (out, '"');
      g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
}

/* A cell as text for table and CSV output. */
static char *
cell_text (sqlite3_stmt *st, int i, Format fmt)
{
  switch (sqlite3_column_type (st, i))
    {
    case SQLITE_NULL:
      return g_strdup (fmt == FMT_TABLE ? "NULL" : "");
    case SQLITE_BLOB:
      return g_strdup_printf ("<blob %d bytes>", sqlite3_column_bytes (st, i));
    case SQLITE_FLOAT:
      {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        return g_strdup (g_ascii_formatd (buf, sizeof buf, "%.10g", sqlite3_column_double (st, i)));
      }
    default:
      return g_strdup ((const char *) sqlite3_column_text (st, i));
    }
}

static gboolean
run_statement (CxrStore *store, sqlite3_stmt *st, Format fmt, gboolean *first_json, GError **error)
{
  int nc = sqlite3_column_count (st);
  GString *out = g_string_new (NULL);
  GPtrArray *rows = NULL; /* table: every cell, to size the columns */
  int rc;

  if (nc > 0 && fmt == FMT_CSV)
    {
      for (int i = 0; i < nc; i++)
        {
          if (i)
            g_string_append_c (out, ',');
          csv_field (out, sqlite3_column_name (st, i));
        }
      g_string_append (out, "\r\n");
    }
  if (fmt == FMT_TABLE)
    {
      rows = g_ptr_array_new_with_free_func (g_free);
      for (int i = 0; i < nc; i++)
        g_ptr_array_add (rows, g_strdup (sqlite3_column_name (st, i)));
    }
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      if (fmt == FMT_JSON)
        {
          g_string_append (out, *first_json ? "\n  {" : ",\n  {");
          *first_json = FALSE;
          for (int i = 0; i < nc; i++)
            {
              if (i)
                g_string_append (out, ", ");
              const char *name = sqlite3_column_name (st, i);
              json_string (out, name, (int) strlen (name));
              g_string_append (out, ": ");
              int t = sqlite3_column_type (st, i);
              if (t == SQLITE_NULL)
                g_string_append (out, "null");
              else if (t == SQLITE_INTEGER)
                g_string_append_printf (out, "%lld", sqlite3_column_int64 (st, i));
              else if (t == SQLITE_FLOAT)
                {
                  char buf[G_ASCII_DTOSTR_BUF_SIZE];
                  g_string_append (out, g_ascii_formatd (buf, sizeof buf, "%.17g",
                                                         sqlite3_column_double (st, i)));
                }
              else if (t == SQLITE_BLOB)
                {
                  g_autofree char *b64 = g_base64_encode (sqlite3_column_blob (st, i),
                                                          (gsize) sqlite3_column_bytes (st, i));
                  json_string (out, b64, (int) strlen (b64));
                }
              else
                json_string (out, (const char *) sqlite3_column_text (st, i),
                             sqlite3_column_bytes (st, i));
            }
          g_string_append_c (out, '}');
        }
      else if (fmt == FMT_CSV)
        {
          for (int i = 0; i < nc; i++)
            {
              g_autofree char *t = cell_text (st, i, fmt);
              if (i)
                g_string_append_c (out, ',');
              csv_field (out, t);
            }
          g_string_append (out, "\r\n");
        }
      else
        for (int i = 0; i < nc; i++)
          g_ptr_array_add (rows, cell_text (st, i, fmt));
      if (out->len > 65536)
        {
          fwrite (out->str, 1, out->len, stdout);
          g_string_truncate (out, 0);
        }
    }
  if (fmt == FMT_TABLE && nc > 0)
    {
      g_autofree int *w = g_new0 (int, nc);
      for (guint k = 0; k < rows->len; k++)
        w[k % nc] = MAX (w[k % nc], (int) g_utf8_strlen (rows->pdata[k], -1));
      for (guint k = 0; k < rows->len; k++)
        {
          int i = (int) (k % nc);
          const char *t = rows->pdata[k];
          int pad = w[i] - (int) g_utf8_strlen (t, -1);
          g_string_append (out, t);
          if (i < nc - 1)
            g_string_append_printf (out, "%*s  ", pad, "");
          else
            g_string_append_c (out, '\n');
          if (k == (guint) nc - 1)
            {
              for (int j = 0; j < nc; j++)
                {
                  for (int d = 0; d < w[j]; d++)
                    g_string_append_c (out, '-');
                  g_string_append (out, j < nc - 1 ? "  " : "\n");
                }
            }
        }
    }
  fwrite (out->str, 1, out->len, stdout);
  g_string_free (out, TRUE);
  if (rows)
    g_ptr_array_unref (rows);
  if (rc != SQLITE_DONE)
    return cxr_store_set_error (store, error, "query");
  return TRUE;
}

int
cmd_sql (int argc, char **argv)
{
  g_autofree char *db = NULL, *format = NULL;
  gboolean write = FALSE;
  GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Store", "DB" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, "table (default), csv or json", "FMT" },
    { "write", 0, 0, G_OPTION_ARG_NONE, &write, "Allow statements that change the store", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("'SQL' - query the store");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (db == NULL || argc != 2)
    return cli_usage_error (ctx, "sql needs --db and one SQL argument");
  Format fmt = FMT_TABLE;
  if (format == NULL || g_str_equal (format, "table"))
    fmt = FMT_TABLE;
  else if (g_str_equal (format, "csv"))
    fmt = FMT_CSV;
  else if (g_str_equal (format, "json"))
    fmt = FMT_JSON;
  else
    return cli_usage_error (ctx, "unknown --format '%s' (table, csv or json)", format);

  g_autoptr (CxrStore) store = cxr_store_open (db, write ? CXR_STORE_READ_WRITE
                                                         : CXR_STORE_READ_ONLY | CXR_STORE_NO_CREATE,
                                               &error);
  if (store == NULL)
    return cli_fail (error);

  const char *sql = argv[1];
  gboolean first_json = TRUE;
  if (fmt == FMT_JSON)
    fputs ("[", stdout);
  int rc = CXR_EXIT_OK;
  while (sql && *sql)
    {
      sqlite3_stmt *st = NULL;
      const char *tail = NULL;
      if (sqlite3_prepare_v2 (cxr_store_db (store), sql, -1, &st, &tail) != SQLITE_OK)
        {
          cxr_store_set_error (store, &error, "query");
          rc = cli_fail (error);
          break;
        }
      sql = tail;
      if (st == NULL) /* whitespace or a comment */
        continue;
      gboolean ok = run_statement (store, st, fmt, &first_json, &error);
      sqlite3_finalize (st);
      if (!ok)
        {
          if (!write && strstr (error->message, "readonly"))
            g_prefix_error (&error, "(read-only; use --write to change the store) ");
          rc = cli_fail (error);
          break;
        }
    }
  if (fmt == FMT_JSON)
    fputs (first_json ? "]\n" : "\n]\n", stdout);
  return rc;
}
