/* SPDX-License-Identifier: MIT
 *
 * Ingest: metadata rows plus the image files they name, into the store.
 *
 * Two row sources share one pipeline: the NIH Data_Entry_2017.csv (original
 * or 2020 revision, plain or gzip) and a generic manifest CSV. Rows stream
 * from the CSV reader; a row whose file exists becomes a job for a pool of
 * decoder threads (read, SHA-256, full libpng decode); the calling thread
 * owns the only database connection and writes results in batched
 * transactions. At most 4 jobs per thread are in flight, so memory stays
 * bounded whatever the archive size.
 *
 * Idempotence and crash safety: image_index is UNIQUE. A row already
 * stored is not written again; a stored 'ok' film whose file now has other
 * content is reported as a conflict and kept. The store writes in batched
 * transactions and orders visits at the end (store-scans.c), so a run
 * killed at any point leaves complete batches behind, and the next run
 * finishes the job without duplicates.
 *
 * Visit order comes from the study date, the source's visit number (NIH
 * 'Follow-up #') or the day offset; the NIH file-name suffix is never
 * used: it disagrees with 'Follow-up #' in 24,106 rows of the NIH release.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cxr/csv.h"
#include "cxr/error.h"
#include "cxr/image.h"
#include "cxr/ingest.h"
#include "ingest-private.h"
#include "util-private.h"
#include "store-private.h"

/* Canonical fields; a source maps each to a CSV column (or none). */
typedef enum {
  F_IMAGE_INDEX,
  F_PATIENT_ID,
  F_VISIT,
  F_STUDY_DATE,
  F_DAY_OFFSET,
  F_AGE,
  F_SEX,
  F_VIEW,
  F_LABELS,
  F_PATH,
  F_ORIG_W,
  F_ORIG_H,
  F_SPACING_X,
  F_SPACING_Y,
  F_SPACING,
  N_FIELDS
} Field;

/* Manifest column names (the generic format, README "Manifest format"). */
static const char *const manifest_names[N_FIELDS] = {
  "image_index",
  "patient_id",
  "visit",
  "study_date",
  "day_offset",
  "age_years",
  "sex",
  "view_position",
  "finding_labels",
  "path",
  "orig_width",
  "orig_height",
  "orig_spacing_x_mm",
  "orig_spacing_y_mm",
  "pixel_spacing_mm",
};

/* NIH names; the size and spacing headers are split by their own commas
 * ("OriginalImage[Width,Height]"), so the second half is the next column. */
static const char *const nih_names[N_FIELDS] = {
  "Image Index",
  "Patient ID",
  "Follow-up #",
  NULL,
  NULL,
  "Patient Age",
  "Patient Gender",
  "View Position",
  "Finding Labels",
  NULL,
  "OriginalImage[Width",
  "Height]",
  "OriginalImagePixelSpacing[x",
  "y]",
  NULL,
};

typedef CxrScanRecord Record;

typedef enum { OUT_OK, OUT_INVALID, OUT_UNCHANGED, OUT_CONFLICT } Outcome;

typedef struct {
  Record rec;
  gint64 existing_id; /* 0 when new */
  char *existing_sha;
  char *existing_status;
  /* filled by the worker */
  Outcome outcome;
  char sha256[65];
  CxrImageInfo info;
  char *error;
} Job;

static void
job_free (Job *j)
{
  cxr__scan_record_clear (&j->rec);
  g_free (j->existing_sha);
  g_free (j->existing_status);
  g_free (j->error);
  g_free (j);
}

typedef struct {
  CxrStore *store;
  const CxrIngestOptions *opt;
  CxrIngestSummary *sum;
  gint64 run_id;
  CxrCsvReader *csv;
  gboolean nih;
  int col[N_FIELDS];
  char *base_dir;        /* manifest folder */
  GHashTable *files;     /* basename -> path under the image roots */
  GHashTable *in_flight; /* image_index set of queued jobs */
  GThreadPool *pool;
  GAsyncQueue *done;
  guint n_in_flight;
  CxrScanWriter *writer;
  gint64 last_progress_us, start_us;
} Ingest;

void
cxr_ingest_options_init (CxrIngestOptions *o)
{
  static const CxrImageLimits lim = CXR_IMAGE_LIMITS_DEFAULT;
  memset (o, 0, sizeof *o);
  o->limits = lim;
}

void
cxr_ingest_summary_init (CxrIngestSummary *s)
{
  memset (s, 0, sizeof *s);
  s->messages = g_ptr_array_new_with_free_func (g_free);
  s->run_id = -1;
}

void
cxr_ingest_summary_clear (CxrIngestSummary *s)
{
  if (s->messages)
    g_ptr_array_unref (s->messages);
  s->messages = NULL;
}

static void G_GNUC_PRINTF (2, 3) note (Ingest *in, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  cxr__messages_addv (in->sum->messages, &in->sum->n_messages, CXR_INGEST_MAX_MESSAGES, fmt, ap);
  va_end (ap);
}

/* --- parsing fields --------------------------------------------------- */

/**
 * cxr__ingest_view_kind:
 * Returns: "PA", "AP", "lateral" or "unknown" for a view position as
 * archives write it ("PA", "AP Supine", "L", "LL", "LATERAL", ...).
 */
const char *
cxr__ingest_view_kind (const char *v)
{
  if (v == NULL || *v == '\0')
    return "unknown";
  g_autofree char *u = g_ascii_strup (v, -1);
  g_strstrip (u);
  if (g_str_equal (u, "L") || g_str_equal (u, "LL") || g_str_equal (u, "RL")
      || g_str_has_prefix (u, "LAT"))
    return "lateral";
  if (g_str_has_prefix (u, "PA"))
    return "PA";
  if (g_str_has_prefix (u, "AP"))
    return "AP";
  return "unknown";
}

/**
 * cxr__ingest_parse_date:
 * Accepts YYYY-MM-DD (optionally followed by a time) and DICOM's
 * YYYYMMDD; writes the ISO date. Returns %FALSE for anything else,
 * including impossible dates such as 2019-02-30.
 */
gboolean
cxr__ingest_parse_date (const char *text, char out[11])
{
  int y, m, d;
  char tail;
  if (strlen (text) >= 10 && text[4] == '-' && text[7] == '-')
    {
      if (sscanf (text, "%4d-%2d-%2d%c", &y, &m, &d, &tail) < 3)
        return FALSE;
      if (text[10] != '\0' && text[10] != 'T' && text[10] != ' ')
        return FALSE;
    }
  else if (strlen (text) == 8 && strspn (text, "0123456789") == 8)
    {
      if (sscanf (text, "%4d%2d%2d", &y, &m, &d) != 3)
        return FALSE;
    }
  else
    return FALSE;
  if (y < 1800 || y > 9999 || !g_date_valid_dmy ((GDateDay) d, (GDateMonth) m, (GDateYear) y))
    return FALSE;
  g_snprintf (out, 11, "%04d-%02d-%02d", y, m, d);
  return TRUE;
}

/* The field's text, trimmed, or "" when the row is too short or the
 * source has no such column. Points into a scratch copy. */
static const char *
field (Ingest *in, GPtrArray *row, Field f)
{
  int c = in->col[f];
  if (c < 0 || (guint) c >= row->len)
    return "";
  return g_strstrip ((char *) g_ptr_array_index (row, c));
}

static const char *
field_label (Ingest *in, Field f)
{
  const char *const *names = in->nih ? nih_names : manifest_names;
  if (!in->nih && in->opt->column_map)
    {
      const char *mapped = g_hash_table_lookup (in->opt->column_map, manifest_names[f]);
      if (mapped)
        return mapped;
    }
  return names[f] ? names[f] : "?";
}

/* --- finding files ---------------------------------------------------- */

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
index_dir (Ingest *in, const char *dir, int depth)
{
  if (depth > 32)
    return;
  GDir *d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    {
      note (in, "%s: cannot read folder", dir);
      return;
    }
  /* Sorted, so a name found twice resolves the same way on every run. */
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *n;
  while ((n = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (n));
  g_dir_close (d);
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      g_autofree char *p = g_build_filename (dir, name, NULL);
      if (g_file_test (p, G_FILE_TEST_IS_DIR))
        {
          if (!g_file_test (p, G_FILE_TEST_IS_SYMLINK))
            index_dir (in, p, depth + 1);
          continue;
        }
      char *dot = strrchr (name, '.');
      if (dot == NULL || g_ascii_strcasecmp (dot, ".png") != 0)
        continue;
      if (g_hash_table_contains (in->files, name))
        {
          note (in, "%s: same file name also under %s; using the first", p,
                (const char *) g_hash_table_lookup (in->files, name));
          continue;
        }
      g_hash_table_insert (in->files, g_strdup (name), g_steal_pointer (&p));
    }
  g_ptr_array_unref (names);
}

static char *
resolve_path (Ingest *in, const char *given, const char *image_index)
{
  if (given && *given)
    {
      g_autofree char *p = g_path_is_absolute (given)
                               ? g_strdup (given)
                               : g_build_filename (in->base_dir, given, NULL);
      if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&p);
      g_autofree char *base = g_path_get_basename (given);
      const char *found = g_hash_table_lookup (in->files, base);
      return found ? g_strdup (found) : NULL;
    }
  const char *found = g_hash_table_lookup (in->files, image_index);
  return found ? g_strdup (found) : NULL;
}

/* --- reading one row into a Record ------------------------------------ */

/* Returns FALSE (row rejected, message noted) when the row cannot be stored. */
static gboolean
parse_row (Ingest *in, GPtrArray *row, Record *r)
{
  const char *file = cxr_csv_reader_name (in->csv);
  guint line = cxr_csv_reader_line (in->csv);
  r->line = line;
  r->visit = -1;
  r->day_offset = r->age_years = r->orig_sx = r->orig_sy = r->spacing = NAN;
  r->orig_w = r->orig_h = -1;

  /* A short row: the first absent column decides how we report it. */
  for (int f = 0; f < N_FIELDS; f++)
    if ((f == F_IMAGE_INDEX && in->nih) || f == F_PATIENT_ID)
      if (in->col[f] >= 0 && (guint) in->col[f] >= row->len)
        {
          note (in, "%s:%u: row has %u fields; '%s' is missing", file, line, row->len,
                field_label (in, (Field) f));
          return FALSE;
        }

  const char *pid = field (in, row, F_PATIENT_ID);
  if (*pid == '\0')
    {
      note (in, "%s:%u: '%s' is empty", file, line, field_label (in, F_PATIENT_ID));
      return FALSE;
    }
  r->patient_id = g_strconcat (in->opt->patient_prefix ? in->opt->patient_prefix : "", pid, NULL);

  const char *given_path = field (in, row, F_PATH);
  const char *idx = field (in, row, F_IMAGE_INDEX);
  if (*idx)
    r->image_index = g_strdup (idx);
  else if (!in->nih && *given_path)
    r->image_index = g_path_get_basename (given_path);
  else
    {
      note (in, "%s:%u: '%s' is empty", file, line,
            field_label (in, in->nih ? F_IMAGE_INDEX : F_PATH));
      return FALSE;
    }

  const char *v = field (in, row, F_VISIT);
  if (*v && !cxr__parse_int (v, &r->visit))
    {
      note (in, "%s:%u: '%s' is not a number: '%s'", file, line, field_label (in, F_VISIT), v);
      return FALSE;
    }
  if (in->nih && r->visit < 0)
    {
      note (in, "%s:%u: '%s' is %s", file, line, field_label (in, F_VISIT),
            *v ? "negative" : "empty");
      return FALSE;
    }
  const char *date = field (in, row, F_STUDY_DATE);
  if (*date)
    {
      char iso[11];
      if (!cxr__ingest_parse_date (date, iso))
        {
          note (in, "%s:%u: '%s' is not an ISO 8601 date: '%s'", file, line,
                field_label (in, F_STUDY_DATE), date);
          return FALSE;
        }
      r->study_date = g_strdup (iso);
    }
  const char *off = field (in, row, F_DAY_OFFSET);
  if (*off && !cxr__parse_double (off, &r->day_offset))
    {
      note (in, "%s:%u: '%s' is not a number: '%s'", file, line, field_label (in, F_DAY_OFFSET),
            off);
      return FALSE;
    }
  if (!in->nih && r->study_date == NULL && r->visit < 0 && isnan (r->day_offset))
    note (in, "%s:%u: no study date, day offset or visit for '%s': ordered by name", file, line,
          r->image_index);

  /* Optional fields: a bad value is stored as NULL, with a note. */
  const char *age = field (in, row, F_AGE);
  if (*age)
    {
      g_autofree char *a = g_strdup (age);
      gsize n = strlen (a);
      if (n > 1 && (a[n - 1] == 'Y' || a[n - 1] == 'y')) /* DICOM style "058Y" */
        a[n - 1] = '\0';
      double years;
      if (!cxr__parse_double (a, &years) || years < 0 || years > 130)
        note (in, "%s:%u: '%s' is not a plausible age: '%s' (stored as NULL)", file, line,
              field_label (in, F_AGE), age);
      else
        r->age_years = years;
    }
  const char *sex = field (in, row, F_SEX);
  if (*sex)
    {
      if (g_ascii_strcasecmp (sex, "M") == 0 || g_ascii_strcasecmp (sex, "male") == 0)
        r->sex = g_strdup ("M");
      else if (g_ascii_strcasecmp (sex, "F") == 0 || g_ascii_strcasecmp (sex, "female") == 0)
        r->sex = g_strdup ("F");
      else
        r->sex = g_ascii_strup (sex, -1);
    }
  const char *view = field (in, row, F_VIEW);
  r->view_position = *view ? g_strdup (view) : NULL;
  const char *labels = field (in, row, F_LABELS);
  r->labels = *labels ? g_strdup (labels) : NULL;

  struct {
    Field f;
    gint64 *i;
    double *d;
  } opt[] = {
    { F_ORIG_W, &r->orig_w, NULL },     { F_ORIG_H, &r->orig_h, NULL },
    { F_SPACING_X, NULL, &r->orig_sx }, { F_SPACING_Y, NULL, &r->orig_sy },
    { F_SPACING, NULL, &r->spacing },
  };
  for (guint k = 0; k < G_N_ELEMENTS (opt); k++)
    {
      const char *t = field (in, row, opt[k].f);
      if (*t == '\0')
        continue;
      gboolean ok = opt[k].i ? cxr__parse_int (t, opt[k].i) && *opt[k].i > 0
                             : cxr__parse_double (t, opt[k].d) && *opt[k].d > 0;
      if (!ok)
        {
          if (opt[k].i)
            *opt[k].i = -1;
          else
            *opt[k].d = NAN;
          note (in, "%s:%u: '%s' is not a positive number: '%s' (stored as NULL)", file, line,
                field_label (in, opt[k].f), t);
        }
    }

  r->path = resolve_path (in, given_path, r->image_index);
  return TRUE;
}

/* --- the decoder threads ---------------------------------------------- */

static void
worker (gpointer data, gpointer user_data)
{
  Job *j = data;
  Ingest *in = user_data;
  g_autoptr (GError) err = NULL;
  gsize len = 0;
  g_autofree guint8 *buf = cxr_image_read_file (j->rec.path, &in->opt->limits, &len, &err);
  if (buf == NULL)
    {
      j->outcome = OUT_INVALID;
      j->error = g_strdup (err->message);
      g_async_queue_push (in->done, j);
      return;
    }
  g_autofree char *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, buf, len);
  g_strlcpy (j->sha256, sha, sizeof j->sha256);
  if (j->existing_sha && g_str_equal (j->existing_sha, sha))
    j->outcome = OUT_UNCHANGED;
  else if (j->existing_status && g_str_equal (j->existing_status, "ok"))
    j->outcome = OUT_CONFLICT;
  else if (cxr_image_decode (j->rec.path, buf, len, &in->opt->limits, &j->info, NULL, &err))
    j->outcome = OUT_OK;
  else
    {
      j->outcome = OUT_INVALID;
      j->error = g_strdup (err->message);
    }
  g_async_queue_push (in->done, j);
}

/* --- writing ---------------------------------------------------------- */

/* Spacing of the stored film: NIH gives the original's; the stored film is
 * that film resampled to width px. */
static double
stored_spacing (const Record *r, guint32 width)
{
  if (!isnan (r->spacing))
    return r->spacing;
  if (!isnan (r->orig_sx) && r->orig_w > 0 && width > 0)
    return r->orig_sx * (double) r->orig_w / (double) width;
  return NAN;
}

static gboolean
write_scan (Ingest *in, const Record *r, gint64 existing_id, const char *status, const char *sha,
            const CxrImageInfo *info, const char *err, GError **error)
{
  gboolean have_info = info && info->width > 0;
  CxrScanFile f = { status, sha, have_info ? info : NULL,
                    stored_spacing (r, have_info ? info->width : 0), err };
  return cxr__scan_writer_add (in->writer, r, existing_id, &f, error);
}

static gboolean
finish_job (Ingest *in, Job *j, GError **error)
{
  in->n_in_flight--;
  g_hash_table_remove (in->in_flight, j->rec.image_index);
  gboolean ok = TRUE;
  switch (j->outcome)
    {
    case OUT_UNCHANGED: in->sum->n_unchanged++; break;
    case OUT_CONFLICT:
      in->sum->n_conflicts++;
      note (in,
            "%s: content differs from the stored '%s' (sha256 %.12s..., stored %.12s...); "
            "kept the stored film",
            j->rec.path, j->rec.image_index, j->sha256, j->existing_sha);
      break;
    case OUT_OK:
      in->sum->n_ok++;
      ok = write_scan (in, &j->rec, j->existing_id, "ok", j->sha256, &j->info, NULL, error);
      break;
    case OUT_INVALID:
      in->sum->n_invalid++;
      note (in, "%s", j->error);
      ok = write_scan (in, &j->rec, j->existing_id, "invalid", j->sha256[0] ? j->sha256 : NULL,
                       NULL, j->error, error);
      break;
    }
  job_free (j);
  return ok;
}

static void
report_progress (Ingest *in, gboolean force)
{
  if (in->opt->progress == NULL)
    return;
  gint64 now = g_get_monotonic_time ();
  if (!force && now - in->last_progress_us < 250000)
    return;
  in->last_progress_us = now;
  in->sum->elapsed_s = (now - in->start_us) / 1e6;
  in->opt->progress (in->sum, cxr_csv_reader_progress (in->csv), in->opt->progress_data);
}

/* Handles one parsed row: dispatch a job, or write directly. */
static gboolean
handle_record (Ingest *in, Record *r, GError **error)
{
  if (g_hash_table_contains (in->in_flight, r->image_index))
    {
      in->sum->n_rejected++;
      note (in, "%s:%u: duplicate Image Index '%s' (already read in this run)",
            cxr_csv_reader_name (in->csv), r->line, r->image_index);
      cxr__scan_record_clear (r);
      return TRUE;
    }
  CxrStoredScan stored;
  if (!cxr__scan_writer_lookup (in->writer, r->image_index, &stored, error))
    {
      cxr__scan_record_clear (r);
      return FALSE;
    }
  gint64 existing_id = stored.scan_id, existing_run = stored.run_id;
  g_autofree char *existing_sha = g_steal_pointer (&stored.sha256);
  g_autofree char *existing_status = g_steal_pointer (&stored.status);

  if (existing_id > 0 && existing_run == in->run_id)
    {
      in->sum->n_rejected++;
      note (in, "%s:%u: duplicate Image Index '%s' (already read in this run)",
            cxr_csv_reader_name (in->csv), r->line, r->image_index);
      cxr__scan_record_clear (r);
      return TRUE;
    }

  if (r->path == NULL)
    {
      gboolean ok = TRUE;
      if (existing_id > 0)
        in->sum->n_unchanged++;
      else
        {
          in->sum->n_missing++;
          ok = write_scan (in, r, 0, "missing", NULL, NULL, NULL, error);
        }
      cxr__scan_record_clear (r);
      return ok;
    }

  Job *j = g_new0 (Job, 1);
  j->rec = *r;
  memset (r, 0, sizeof *r);
  j->existing_id = existing_id;
  j->existing_sha = g_steal_pointer (&existing_sha);
  j->existing_status = g_steal_pointer (&existing_status);
  g_hash_table_add (in->in_flight, g_strdup (j->rec.image_index));
  in->n_in_flight++;
  g_thread_pool_push (in->pool, j, NULL);
  return TRUE;
}

static gboolean
write_run_counts (Ingest *in, GError **error)
{
  CxrIngestSummary *s = in->sum;
  CxrRunCounts c = { s->n_rows,      s->n_ok,       s->n_missing,  s->n_invalid,
                     s->n_unchanged, s->n_rejected, s->n_conflicts };
  GString *msg = g_string_new (NULL);
  for (guint i = 0; i < s->messages->len; i++)
    g_string_append_printf (msg, "%s\n", (const char *) s->messages->pdata[i]);
  gboolean ok = cxr__store_run_counts (in->store, in->run_id, &c, msg->str, error);
  g_string_free (msg, TRUE);
  return ok;
}

static gboolean
map_columns (Ingest *in, GPtrArray *header, GError **error)
{
  const char *file = cxr_csv_reader_name (in->csv);
  for (int f = 0; f < N_FIELDS; f++)
    {
      in->col[f] = -1;
      const char *name = in->nih ? nih_names[f] : manifest_names[f];
      if (name == NULL)
        continue;
      if (!in->nih && in->opt->column_map)
        {
          const char *mapped = g_hash_table_lookup (in->opt->column_map, name);
          if (mapped)
            {
              in->col[f] = cxr_csv_find_column (header, mapped);
              if (in->col[f] < 0)
                {
                  g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                               "%s:1: no column '%s' (mapped to %s)", file, mapped, name);
                  return FALSE;
                }
              continue;
            }
        }
      in->col[f] = cxr_csv_find_column (header, name);
    }
  if (in->nih)
    {
      /* Older exports name the split halves differently; fall back to
       * position: width then height, spacing x then y. */
      if (in->col[F_ORIG_H] < 0 && in->col[F_ORIG_W] >= 0)
        in->col[F_ORIG_H] = in->col[F_ORIG_W] + 1;
      if (in->col[F_SPACING_Y] < 0 && in->col[F_SPACING_X] >= 0)
        in->col[F_SPACING_Y] = in->col[F_SPACING_X] + 1;
      Field req[] = { F_IMAGE_INDEX, F_PATIENT_ID, F_VISIT };
      for (guint k = 0; k < G_N_ELEMENTS (req); k++)
        if (in->col[req[k]] < 0)
          {
            g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                         "%s:1: no '%s' column; is this the NIH Data_Entry_2017.csv?", file,
                         nih_names[req[k]]);
            return FALSE;
          }
    }
  else
    {
      Field req[] = { F_PATIENT_ID, F_PATH };
      for (guint k = 0; k < G_N_ELEMENTS (req); k++)
        if (in->col[req[k]] < 0)
          {
            g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                         "%s:1: no '%s' column (a manifest needs patient_id, path and one of "
                         "study_date, day_offset, visit)",
                         file, field_label (in, req[k]));
            return FALSE;
          }
      if (in->col[F_STUDY_DATE] < 0 && in->col[F_DAY_OFFSET] < 0 && in->col[F_VISIT] < 0)
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                       "%s:1: no study_date, day_offset or visit column: visit order unknown",
                       file);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
run (CxrStore *store, const char *path, gboolean nih, const CxrIngestOptions *opt,
     CxrIngestSummary *sum, GError **error)
{
  g_return_val_if_fail (store != NULL && path != NULL && opt != NULL && sum != NULL, FALSE);
  if (sum->messages == NULL)
    cxr_ingest_summary_init (sum);

  Ingest in_ = { .store = store, .opt = opt, .sum = sum, .nih = nih };
  Ingest *in = &in_;
  in->start_us = g_get_monotonic_time ();
  gboolean ok = FALSE;
  GError *err = NULL;
  char *abs = NULL;
  GPtrArray *header = NULL;
  guint max_in_flight = 0;
  int jobs;
  gboolean eof = FALSE;

  in->csv = cxr_csv_reader_open (path, &err);
  if (in->csv == NULL)
    goto out;
  abs = g_canonicalize_filename (path, NULL);
  in->base_dir = g_path_get_dirname (abs);
  if (!cxr_csv_reader_next (in->csv, &header, &err))
    {
      if (err == NULL)
        g_set_error (&err, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "%s: empty file, no header", path);
      goto out;
    }
  if (!map_columns (in, header, &err))
    goto out;

  in->files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < opt->n_roots; i++)
    {
      if (!g_file_test (opt->image_roots[i], G_FILE_TEST_IS_DIR))
        {
          g_set_error (&err, CXR_ERROR, CXR_ERROR_IO, "%s: not a folder", opt->image_roots[i]);
          goto out;
        }
      index_dir (in, opt->image_roots[i], 0);
    }

  in->run_id
      = cxr_store_run_begin (store, nih ? "ingest --nih" : "ingest --manifest", opt->argv, &err);
  if (in->run_id < 0)
    goto out;
  sum->run_id = in->run_id;
  in->writer = cxr__scan_writer_new (store, in->run_id, opt->batch_rows, &err);
  if (in->writer == NULL)
    goto out;

  jobs = opt->jobs > 0 ? opt->jobs : (int) g_get_num_processors ();
  in->in_flight = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  in->done = g_async_queue_new ();
  in->pool = g_thread_pool_new (worker, in, jobs, FALSE, NULL);
  max_in_flight = 4 * (guint) jobs;
  while (!eof || in->n_in_flight > 0)
    {
      Job *j;
      while ((j = g_async_queue_try_pop (in->done)))
        if (!finish_job (in, j, &err))
          goto drain;
      if (eof || in->n_in_flight >= max_in_flight)
        {
          if (in->n_in_flight > 0 && !finish_job (in, g_async_queue_pop (in->done), &err))
            goto drain;
          report_progress (in, FALSE);
          continue;
        }
      GPtrArray *row = NULL;
      if (!cxr_csv_reader_next (in->csv, &row, &err))
        {
          if (err)
            goto drain;
          eof = TRUE;
          continue;
        }
      sum->n_rows++;
      Record r = { 0 };
      if (!parse_row (in, row, &r))
        {
          sum->n_rejected++;
          cxr__scan_record_clear (&r);
        }
      else if (!handle_record (in, &r, &err))
        goto drain;
      report_progress (in, FALSE);
    }
  if (!cxr__scan_writer_finish (in->writer, &err))
    goto drain;
  ok = TRUE;

drain:
  if (in->pool)
    {
      /* Let queued jobs finish (or drop them) before freeing what they use. */
      g_thread_pool_free (in->pool, !ok, TRUE);
      Job *j;
      while ((j = g_async_queue_try_pop (in->done)))
        job_free (j);
    }
  /* what was not committed is rolled back */
  g_clear_pointer (&in->writer, cxr__scan_writer_free);
out:
  if (in->csv)
    report_progress (in, TRUE);
  sum->elapsed_s = (g_get_monotonic_time () - in->start_us) / 1e6;
  if (in->run_id > 0)
    {
      if (!ok && err)
        note (in, "%s", err->message);
      write_run_counts (in, NULL);
      cxr_store_run_end (store, in->run_id, ok, NULL);
    }
  cxr__scan_writer_free (in->writer);
  if (in->done)
    g_async_queue_unref (in->done);
  if (in->in_flight)
    g_hash_table_unref (in->in_flight);
  if (in->files)
    g_hash_table_unref (in->files);
  g_free (in->base_dir);
  g_free (abs);
  cxr_csv_reader_free (in->csv);
  if (err)
    g_propagate_error (error, err);
  return ok;
}

/**
 * cxr_ingest_nih:
 * @csv_path: Data_Entry_2017.csv (2017 or 2020 revision), plain or .gz
 * @summary: (out caller-allocates): counts and the first messages
 *
 * Ingests the NIH metadata, and the films found under the image roots.
 * Row and file problems are counted and noted in @summary; only problems
 * that stop the whole run (unreadable CSV, database errors) return %FALSE.
 */
gboolean
cxr_ingest_nih (CxrStore *store, const char *csv_path, const CxrIngestOptions *options,
                CxrIngestSummary *summary, GError **error)
{
  return run (store, csv_path, TRUE, options, summary, error);
}

/**
 * cxr_ingest_manifest:
 * The generic format: a CSV with patient_id, path, and study_date,
 * day_offset or visit (README, "Manifest format"); column names can be
 * mapped with options->column_map.
 */
gboolean
cxr_ingest_manifest (CxrStore *store, const char *manifest_path, const CxrIngestOptions *options,
                     CxrIngestSummary *summary, GError **error)
{
  return run (store, manifest_path, FALSE, options, summary, error);
}
