/* SPDX-License-Identifier: MIT
 *
 * cxrtrack sql: cohort queries against the store. Read-only by default
 * (PRAGMA query_only), so a mistyped UPDATE cannot damage a study; --write
 * lifts that. Several statements may be given; each one's rows are printed
 * as an aligned table, CSV (RFC 4180) or JSON (an array of objects).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cxr/cxr.h"

typedef enum { FMT_TABLE, FMT_CSV, FMT_JSON } Format;

/* A JSON string of @n bytes of text: escaped, and every byte that is not
 * part of valid UTF-8 replaced by U+FFFD, so the output is valid JSON
 * whatever the store holds. */
static void
json_string (GString *out, const char *s, int n)
{
  g_string_append_c (out, '"');
  for (int i = 0; i < n;)
    {
      unsigned char c = (unsigned char) s[i];
      if (c >= 0x80)
        {
          gunichar u = g_utf8_get_char_validated (s + i, n - i);
          if (u == (gunichar) -1 || u == (gunichar) -2)
            {
              g_string_append (out, "\\ufffd");
              i++;
              continue;
            }
          int len = g_unichar_to_utf8 (u, NULL);
          g_string_append_len (out, s + i, len);
          i += len;
          continue;
        }
      switch (c)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default:
          if (c < 0x20 || c == 0x7f)
            g_string_append_printf (out, "\\u%04x", c);
          else
            g_string_append_c (out, (char) c);
        }
      i++;
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
/* @v as JSON: the shortest decimal that reads back as the same double
 * (0.5772, not 0.57720000000000005), null where JSON has no number. */
static void
json_number (GString *out, double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append (out, isfinite (v) ? cxr_format_double (v, buf) : "null");
}

static char *
cell_text (const CxrValue *v, Format fmt)
{
  switch (v->type)
    {
    case CXR_VALUE_NULL: return g_strdup (fmt == FMT_TABLE ? "NULL" : "");
    case CXR_VALUE_BLOB: return g_strdup_printf ("<blob %" G_GSIZE_FORMAT " bytes>", v->bytes);
    case CXR_VALUE_REAL:
      {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        return g_strdup (g_ascii_formatd (buf, sizeof buf, "%.10g", v->real));
      }
    case CXR_VALUE_INTEGER: return g_strdup_printf ("%" G_GINT64_FORMAT, v->integer);
    default: return g_strdup (v->text);
    }
}

/* What one statement's output needs while its rows arrive. */
typedef struct {
  Format fmt;
  gboolean first_json;
  int nc;
  char **names;
  GString *out;
  GPtrArray *rows; /* table: the cells of the first rows, to size the columns */
  gsize rows_bytes;
  int *widths; /* table: the columns' widths, once the first rows are out */
} Printer;

/* The table format sizes its columns on the first rows it holds, at most
 * this many or this many bytes of text; later rows are printed as they
 * come, in the same columns (a longer cell pushes its line out of line),
 * so a query of any size runs in bounded memory. */
#define TABLE_HELD_ROWS  2000
#define TABLE_HELD_BYTES (8u << 20)

static void
flush_out (Printer *p, gsize above)
{
  if (p->out->len > above)
    {
      fwrite (p->out->str, 1, p->out->len, stdout);
      g_string_truncate (p->out, 0);
    }
}

static void table_cell (Printer *p, int i, const char *t);
static void table_held_rows (Printer *p);

static void
on_columns (int n, const char *const *names, gpointer data)
{
  Printer *p = data;
  p->nc = n;
  g_strfreev (p->names);
  p->names = g_strdupv ((char **) names);
  if (n > 0 && p->fmt == FMT_CSV)
    {
      for (int i = 0; i < n; i++)
        {
          if (i)
            g_string_append_c (p->out, ',');
          csv_field (p->out, names[i]);
        }
      g_string_append (p->out, "\r\n");
    }
  if (p->fmt == FMT_TABLE)
    {
      g_clear_pointer (&p->widths, g_free);
      p->rows_bytes = 0;
      p->rows = g_ptr_array_new_with_free_func (g_free);
      for (int i = 0; i < n; i++)
        g_ptr_array_add (p->rows, g_strdup (names[i]));
    }
}

static void
on_row (int nc, const CxrValue *v, gpointer data)
{
  Printer *p = data;
  GString *out = p->out;
  if (p->fmt == FMT_JSON)
    {
      g_string_append (out, p->first_json ? "\n  {" : ",\n  {");
      p->first_json = FALSE;
      for (int i = 0; i < nc; i++)
        {
          if (i)
            g_string_append (out, ", ");
          json_string (out, p->names[i], (int) strlen (p->names[i]));
          g_string_append (out, ": ");
          if (v[i].type == CXR_VALUE_NULL)
            g_string_append (out, "null");
          else if (v[i].type == CXR_VALUE_INTEGER)
            g_string_append_printf (out, "%" G_GINT64_FORMAT, v[i].integer);
          else if (v[i].type == CXR_VALUE_REAL)
            json_number (out, v[i].real);
          else if (v[i].type == CXR_VALUE_BLOB)
            {
              g_autofree char *b64 = g_base64_encode (v[i].blob, v[i].bytes);
              json_string (out, b64, (int) strlen (b64));
            }
          else
            json_string (out, v[i].text, (int) v[i].bytes);
        }
      g_string_append_c (out, '}');
    }
  else if (p->fmt == FMT_CSV)
    {
      for (int i = 0; i < nc; i++)
        {
          g_autofree char *t = cell_text (&v[i], p->fmt);
          if (i)
            g_string_append_c (out, ',');
          csv_field (out, t);
        }
      g_string_append (out, "\r\n");
    }
  else if (p->widths)
    for (int i = 0; i < nc; i++)
      {
        g_autofree char *t = cell_text (&v[i], p->fmt);
        table_cell (p, i, t);
      }
  else
    {
      for (int i = 0; i < nc; i++)
        {
          char *t = cell_text (&v[i], p->fmt);
          p->rows_bytes += strlen (t);
          g_ptr_array_add (p->rows, t);
        }
      if (p->rows->len / (guint) MAX (nc, 1) > TABLE_HELD_ROWS || p->rows_bytes > TABLE_HELD_BYTES)
        table_held_rows (p);
    }
  flush_out (p, 65536);
}

/* One cell of the table, padded to its column (the last ends the line). */
static void
table_cell (Printer *p, int i, const char *t)
{
  g_string_append (p->out, t);
  if (i < p->nc - 1)
    g_string_append_printf (p->out, "%*s  ", MAX (p->widths[i] - (int) g_utf8_strlen (t, -1), 0),
                            "");
  else
    g_string_append_c (p->out, '\n');
}

/* The columns sized on the rows held, the header and those rows out. */
static void
table_held_rows (Printer *p)
{
  int nc = p->nc;
  GPtrArray *rows = p->rows;
  p->widths = g_new0 (int, nc);
  for (guint k = 0; k < rows->len; k++)
    p->widths[k % nc] = MAX (p->widths[k % nc], (int) g_utf8_strlen (rows->pdata[k], -1));
  for (guint k = 0; k < rows->len; k++)
    {
      table_cell (p, (int) (k % nc), rows->pdata[k]);
      if (k == (guint) nc - 1)
        for (int j = 0; j < nc; j++)
          {
            for (int d = 0; d < p->widths[j]; d++)
              g_string_append_c (p->out, '-');
            g_string_append (p->out, j < nc - 1 ? "  " : "\n");
          }
    }
  g_ptr_array_set_size (rows, 0);
  p->rows_bytes = 0;
  flush_out (p, 0);
}

/* The statement's rows are done: the table, aligned. */
static void
on_end (gpointer data)
{
  Printer *p = data;
  if (p->fmt == FMT_TABLE && p->nc > 0 && p->widths == NULL)
    table_held_rows (p);
  g_clear_pointer (&p->rows, g_ptr_array_unref);
  g_clear_pointer (&p->widths, g_free);
  flush_out (p, 0);
}

int
cmd_sql (int argc, char **argv)
{
  g_autofree char *db = NULL, *format = NULL;
  gboolean write = FALSE;
  double timeout = 0;
  GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Store", "DB" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, "table (default), csv or json", "FMT" },
    { "write", 0, 0, G_OPTION_ARG_NONE, &write, "Allow statements that change the store", NULL },
    { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &timeout,
      "Stop the statements after this long in all (default: no limit)", "SECONDS" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("'SQL' - query the store");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (ctx, "sql", NULL);
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

  g_autoptr (CxrStore) store = cxr_store_open (
      db, write ? CXR_STORE_READ_WRITE : CXR_STORE_READ_ONLY | CXR_STORE_NO_CREATE, &error);
  if (store == NULL)
    return cli_fail (error);
  if (cxr_store_note (store))
    fprintf (stderr, "sql: %s\n", cxr_store_note (store));
  if (timeout < 0)
    return cli_usage_error (ctx, "--timeout must be 0 (no limit) or more seconds");
  cxr_store_set_timeout (store, timeout);

  Printer pr = { fmt, TRUE, 0, NULL, g_string_new (NULL), NULL, 0, NULL };
  const CxrQueryHandler handler = { on_columns, on_row, on_end };
  if (fmt == FMT_JSON)
    fputs ("[", stdout);
  int rc = CXR_EXIT_OK;
  if (!cxr_store_query (store, argv[1], &handler, &pr, &error))
    {
      if (!write && strstr (error->message, "readonly"))
        g_prefix_error (&error, "(read-only; use --write to change the store) ");
      rc = cli_fail (error);
    }
  gboolean first_json = pr.first_json;
  g_string_free (pr.out, TRUE);
  g_strfreev (pr.names);
  g_clear_pointer (&pr.rows, g_ptr_array_unref);
  g_free (pr.widths);
  if (fmt == FMT_JSON)
    fputs (first_json ? "]\n" : "\n]\n", stdout);
  return rc;
}
