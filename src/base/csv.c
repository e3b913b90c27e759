/* SPDX-License-Identifier: MIT
 *
 * Streaming CSV reader. A small state machine over a refillable buffer:
 * RFC 4180 quoting ("" is a quote inside a quoted field, quoted fields may
 * hold commas and newlines), records end at LF, CRLF or a lone CR, a UTF-8
 * byte-order mark at the start is skipped, and empty lines are not records.
 * Input comes through zlib's gzread, which also reads uncompressed files,
 * so Data_Entry_2017.csv and Data_Entry_2017.csv.gz are read the same way.
 * Memory is bounded by the longest record (CXR_CSV_MAX_RECORD_BYTES).
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cxr/csv.h"
#include "cxr/error.h"
#include "util-private.h"

#define BUF_SIZE (64 * 1024)

struct _CxrCsvReader {
  char *name;      /* for messages */
  gzFile gz;       /* NULL when reading from memory */
  const char *mem; /* in-memory input */
  gsize mem_len, mem_pos;
  guint64 file_bytes; /* compressed size on disk, for progress */
  char buf[BUF_SIZE];
  gsize len, pos;
  gboolean eof;
  gboolean started;  /* BOM check done */
  guint line;        /* physical line where the last record started, 1-based */
  guint next_line;   /* physical line of the next byte */
  GPtrArray *fields; /* (element-type utf8): the last record */
  GString *field;
};

static void
reader_init (CxrCsvReader *r, const char *name)
{
  r->name = g_strdup (name);
  r->next_line = 1;
  r->fields = g_ptr_array_new_with_free_func (g_free);
  r->field = g_string_sized_new (64);
}

/**
 * cxr_csv_reader_open:
 * @path: a CSV file, optionally gzip-compressed
 *
 * Returns: (transfer full): a reader, or %NULL with @error set.
 */
CxrCsvReader *
cxr_csv_reader_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  goffset size = 0;
  int fd = cxr__open_regular (path, &size, error);
  if (fd < 0)
    return NULL;
  gzFile gz = gzdopen (fd, "rb");
  if (gz == NULL)
    {
      close (fd);
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot open: out of memory", path);
      return NULL;
    }
  gzbuffer (gz, 128 * 1024);
  CxrCsvReader *r = g_new0 (CxrCsvReader, 1);
  reader_init (r, path);
  r->gz = gz;
  r->file_bytes = (guint64) size;
  return r;
}

/**
 * cxr_csv_reader_new_from_data:
 * @name: name used in messages
 * @data: (transfer none): CSV text; must outlive the reader
 *
 * Returns: (transfer full): a reader over @data.
 */
CxrCsvReader *
cxr_csv_reader_new_from_data (const char *name, const char *data, gsize len)
{
  CxrCsvReader *r = g_new0 (CxrCsvReader, 1);
  reader_init (r, name);
  r->mem = data;
  r->mem_len = len;
  return r;
}

void
cxr_csv_reader_free (CxrCsvReader *r)
{
  if (r == NULL)
    return;
  if (r->gz)
    gzclose (r->gz);
  g_free (r->name);
  g_ptr_array_unref (r->fields);
  g_string_free (r->field, TRUE);
  g_free (r);
}

static gboolean
refill (CxrCsvReader *r, GError **error)
{
  r->pos = 0;
  r->len = 0;
  if (r->eof)
    return TRUE;
  if (r->gz == NULL)
    {
      gsize n = MIN ((gsize) BUF_SIZE, r->mem_len - r->mem_pos);
      memcpy (r->buf, r->mem + r->mem_pos, n);
      r->mem_pos += n;
      r->len = n;
      if (n == 0)
        r->eof = TRUE;
      return TRUE;
    }
  int n = gzread (r->gz, r->buf, BUF_SIZE);
  if (n < 0)
    {
      int errnum;
      const char *msg = gzerror (r->gz, &errnum);
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s:%u: read error: %s", r->name, r->next_line,
                   msg);
      return FALSE;
    }
  if (n == 0)
    {
      /* gzread returns 0 both at a clean end and for a truncated gzip
       * stream; only the latter leaves an error behind. */
      int errnum = Z_OK;
      const char *msg = gzerror (r->gz, &errnum);
      if (errnum != Z_OK && errnum != Z_STREAM_END)
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s:%u: %s", r->name, r->next_line, msg);
          return FALSE;
        }
      r->eof = TRUE;
    }
  r->len = (gsize) n;
  return TRUE;
}

/* Next byte, or -1 at the end of input, -2 on a read error. */
static inline int
next_byte (CxrCsvReader *r, GError **error)
{
  if (r->pos == r->len)
    {
      if (!refill (r, error))
        return -2;
      if (r->len == 0)
        return -1;
    }
  return (unsigned char) r->buf[r->pos++];
}

static inline int
peek_byte (CxrCsvReader *r, GError **error)
{
  int c = next_byte (r, error);
  if (c >= 0)
    r->pos--;
  return c;
}

#define MAX_FIELDS 10000

/* What is wrong with the record being read (the first thing found); the
 * rest of the record is still read, so that the next one starts where it
 * should, but nothing more of it is kept. */
typedef enum { OK, TOO_LONG, TOO_MANY_FIELDS, NUL_BYTE } Problem;

typedef struct {
  Problem problem;
  guint field; /* 1-based field where it was found */
} RecordState;

static void
push_field (CxrCsvReader *r, RecordState *rs)
{
  if (rs->problem != OK)
    return;
  if (r->fields->len >= MAX_FIELDS)
    {
      rs->problem = TOO_MANY_FIELDS;
      return;
    }
  g_ptr_array_add (r->fields, g_strndup (r->field->str, r->field->len));
  g_string_truncate (r->field, 0);
}

static void
append (CxrCsvReader *r, RecordState *rs, int c)
{
  if (rs->problem != OK)
    return;
  if (c == 0)
    {
      rs->problem = NUL_BYTE;
      rs->field = r->fields->len + 1;
      return;
    }
  g_string_append_c (r->field, (char) c);
}

/* The record just read was bad: says why, drops what was kept of it. */
static gboolean
reject (CxrCsvReader *r, const RecordState *rs, GError **error)
{
  switch (rs->problem)
    {
    case TOO_LONG:
      g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT,
                   "%s:%u: record longer than %u bytes (skipped)", r->name, r->line,
                   CXR_CSV_MAX_RECORD_BYTES);
      break;
    case TOO_MANY_FIELDS:
      g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT, "%s:%u: more than %d fields (skipped)",
                   r->name, r->line, MAX_FIELDS);
      break;
    default:
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s:%u: field %u holds a NUL byte (skipped)", r->name, r->line, rs->field);
    }
  g_ptr_array_set_size (r->fields, 0);
  g_string_truncate (r->field, 0);
  return FALSE;
}

/**
 * cxr_csv_reader_next:
 * @fields: (out) (transfer none): the record's fields, valid until the next call
 *
 * A bad record (longer than CXR_CSV_MAX_RECORD_BYTES, more than 10,000
 * fields, a NUL byte in a field) is read to its end and reported as a
 * CXR_ERROR_LIMIT or CXR_ERROR_INVALID_INPUT error that names its line;
 * the next call reads the record after it. A quoted field still open at
 * the end of the input is CXR_ERROR_INVALID_INPUT, and the end follows.
 * Only CXR_ERROR_IO (a read error, a truncated gzip stream) means the
 * rest of the input cannot be read.
 *
 * Returns: %TRUE with a record, %FALSE at the end of input (@error unset)
 * or for a bad record or a read error.
 */
gboolean
cxr_csv_reader_next (CxrCsvReader *r, GPtrArray **fields, GError **error)
{
  g_return_val_if_fail (r != NULL, FALSE);

  g_ptr_array_set_size (r->fields, 0);
  g_string_truncate (r->field, 0);

  if (!r->started)
    {
      r->started = TRUE;
      if (peek_byte (r, error) == 0xEF)
        {
          /* A BOM is three bytes at the very start; refill() delivered at
           * least that many unless the file is shorter. */
          if (r->len - r->pos >= 3 && memcmp (r->buf + r->pos, "\xEF\xBB\xBF", 3) == 0)
            r->pos += 3;
        }
    }

  for (;;)
    {
      r->line = r->next_line;
      gsize record_bytes = 0;
      gboolean in_quotes = FALSE, field_started = FALSE, any = FALSE;
      guint quote_line = 0;
      RecordState rs = { OK, 0 };

      for (;;)
        {
          int c = next_byte (r, error);
          if (c == -2)
            return FALSE;
          if (++record_bytes > CXR_CSV_MAX_RECORD_BYTES && rs.problem == OK)
            rs.problem = TOO_LONG;
          if (in_quotes)
            {
              if (c == -1)
                {
                  g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                               "%s:%u: quoted field is never closed", r->name, quote_line);
                  return FALSE;
                }
              if (c == '"')
                {
                  int d = peek_byte (r, error);
                  if (d == -2)
                    return FALSE;
                  if (d == '"')
                    {
                      r->pos++;
                      append (r, &rs, '"');
                    }
                  else
                    in_quotes = FALSE;
                }
              else
                {
                  if (c == '\n')
                    r->next_line++;
                  append (r, &rs, c);
                }
              continue;
            }
          if (c == -1 || c == '\n' || c == '\r')
            {
              if (c == '\r')
                {
                  int d = peek_byte (r, error);
                  if (d == -2)
                    return FALSE;
                  if (d == '\n')
                    r->pos++;
                }
              if (c != -1)
                r->next_line++;
              if (!any && r->field->len == 0 && !field_started && rs.problem == OK)
                {
                  if (c == -1)
                    return FALSE; /* end of input */
                  break;          /* blank line: not a record */
                }
              push_field (r, &rs);
              if (rs.problem != OK)
                return reject (r, &rs, error);
              *fields = r->fields;
              return TRUE;
            }
          any = TRUE;
          if (c == ',')
            {
              push_field (r, &rs);
              field_started = TRUE; /* a trailing comma makes one more, empty field */
              continue;
            }
          if (c == '"' && r->field->len == 0)
            {
              in_quotes = TRUE;
              field_started = TRUE;
              quote_line = r->next_line;
              continue;
            }
          /* Text after a closing quote ("ab"c) is kept, as most readers do. */
          append (r, &rs, c);
        }
    }
}

guint
cxr_csv_reader_line (const CxrCsvReader *r)
{
  return r->line;
}

const char *
cxr_csv_reader_name (const CxrCsvReader *r)
{
  return r->name;
}

/* Fraction of the input consumed, from the compressed offset for gzip. */
double
cxr_csv_reader_progress (const CxrCsvReader *r)
{
  if (r->gz == NULL)
    return r->mem_len ? (double) r->mem_pos / (double) r->mem_len : 1.0;
  if (r->file_bytes == 0)
    return 1.0;
  z_off_t off = gzoffset (r->gz);
  return off < 0 ? 0.0 : MIN (1.0, (double) off / (double) r->file_bytes);
}

int
cxr_csv_find_column (GPtrArray *header, const char *name)
{
  for (guint i = 0; i < header->len; i++)
    {
      g_autofree char *h = g_strstrip (g_strdup (g_ptr_array_index (header, i)));
      if (g_ascii_strcasecmp (h, name) == 0)
        return (int) i;
    }
  return -1;
}
