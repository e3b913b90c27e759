/* SPDX-License-Identifier: MIT
 *
 * Ingest: metadata rows plus the image files they name, into the store.
 *
 * Five sources share one pipeline: the NIH Data_Entry_2017.csv (original
 * or 2020 revision, plain or gzip), a generic manifest CSV, a folder of
 * DICOM files (ingest-dicom.c), the films of a PACS over DICOMweb
 * (ingest-dicomweb.c: fetched into a cache folder, then read as the DICOM
 * folder is) and a folder of PNG/JPEG films per patient (ingest-folder.c);
 * the folder walks are ingest-walk.c's. Rows stream
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
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cxr/csv.h"
#include "cxr/error.h"
#include "cxr/image.h"
#include "cxr/ingest.h"
#include "ingest-private.h"
#include "util-private.h"
#include "store-private.h"

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

typedef enum { SOURCE_NIH, SOURCE_MANIFEST, SOURCE_DICOM, SOURCE_FOLDER, SOURCE_DICOMWEB } Source;

typedef struct {
  CxrStore *store;
  Source source;
  const CxrIngestOptions *opt;
  CxrIngestSummary *sum;
  gint64 run_id;
  CxrRowReader rows;       /* the CSV, its columns, the image files */
  CxrDicomWalker *walker;  /* --dicom: the folder walked instead; --dicomweb: the films fetched */
  char *cache;             /* --dicomweb: the folder films are fetched into */
  CxrFolderWalker *folder; /* --folder: a folder of PNG/JPEG films */
  GPtrArray *inputs;       /* the input folders, resolved (symlinks may not leave them) */
  GHashTable *in_flight;   /* image_index set of queued jobs */
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

/* A problem, counted and kept for the summary (the first ones). */
void
cxr__ingest_note (CxrIngestSummary *sum, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  cxr__messages_addv (sum->messages, &sum->n_messages, CXR_INGEST_MAX_MESSAGES, fmt, ap);
  va_end (ap);
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
  CxrScanFile f = { status,
                    sha,
                    have_info ? info : NULL,
                    stored_spacing (r, have_info ? info->width : 0),
                    err,
                    cxr__ingest_view_kind (r->view_position) };
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
      cxr__ingest_note (
          in->sum,
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
      cxr__ingest_note (in->sum, "%s", j->error);
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
  double fraction = in->rows.csv ? cxr_csv_reader_progress (in->rows.csv) : 0.0;
  in->opt->progress (in->sum, fraction, in->opt->progress_data);
}

/* Where @path really is, if a symbolic link on the way takes it out of
 * every input folder (the image folders and the manifest's); else NULL. */
static char *
escaping_link (Ingest *in, const char *path)
{
  g_autofree char *real = realpath (path, NULL);
  if (real == NULL)
    return NULL; /* reading it will say what is wrong */
  g_autofree char *lexical = g_canonicalize_filename (path, NULL);
  if (g_str_equal (real, lexical))
    return NULL; /* no link on the way */
  for (guint i = 0; i < in->inputs->len; i++)
    {
      const char *root = in->inputs->pdata[i];
      gsize n = strlen (root);
      if (strncmp (real, root, n) == 0 && (real[n] == '/' || n == 1))
        return NULL;
    }
  return g_steal_pointer (&real);
}

/* Where a record came from, for messages: "FILE:LINE" of a CSV, or the
 * DICOM file. */
static char *
record_where (Ingest *in, const Record *r)
{
  if (in->rows.csv == NULL)
    return g_strdup (r->path);
  return g_strdup_printf ("%s:%u", cxr_csv_reader_name (in->rows.csv), r->line);
}

static gboolean
reject_duplicate (Ingest *in, Record *r)
{
  g_autofree char *where = record_where (in, r);
  in->sum->n_rejected++;
  cxr__ingest_note (in->sum, "%s: duplicate %s '%s' (already read in this run)", where,
                    in->source == SOURCE_DICOM || in->source == SOURCE_DICOMWEB ? "SOP Instance UID"
                                                                                : "Image Index",
                    r->image_index);
  cxr__scan_record_clear (r);
  return TRUE;
}

/* Handles one parsed row: dispatch a job, or write directly (a row
 * without a file, or one @why_invalid says is to be stored invalid). */
static gboolean
handle_record (Ingest *in, Record *r, const char *why_invalid, GError **error)
{
  if (g_hash_table_contains (in->in_flight, r->image_index))
    return reject_duplicate (in, r);
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
    return reject_duplicate (in, r);

  if (why_invalid)
    {
      gboolean ok = TRUE;
      if (existing_id > 0)
        in->sum->n_unchanged++;
      else
        {
          in->sum->n_invalid++;
          cxr__ingest_note (in->sum, "%s", why_invalid);
          ok = write_scan (in, r, 0, "invalid", NULL, NULL, why_invalid, error);
        }
      cxr__scan_record_clear (r);
      return ok;
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

  g_autofree char *target = in->opt->follow_symlinks ? NULL : escaping_link (in, r->path);
  if (target)
    {
      g_autofree char *why
          = g_strdup_printf ("%s: a symbolic link to %s, outside the input folders:"
                             " not read (--follow-symlinks reads it)",
                             r->path, target);
      in->sum->n_invalid++;
      cxr__ingest_note (in->sum, "%s", why);
      gboolean ok = write_scan (in, r, existing_id, "invalid", NULL, NULL, why, error);
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

/* The next record of the source: a CSV row or a DICOM object. Returns
 * FALSE at the end or on an error that stops the run (@error set);
 * *@skip says the row was counted and rejected, nothing to handle. */
static gboolean
next_record (Ingest *in, Record *r, char **why_invalid, gboolean *skip, GError **error)
{
  *skip = FALSE;
  *why_invalid = NULL;
  if (in->walker)
    return cxr__dicom_walker_next (in->walker, in->opt, in->sum, r, why_invalid);
  if (in->folder)
    return cxr__folder_walker_next (in->folder, in->opt, in->sum, r, why_invalid);
  GPtrArray *row = NULL;
  GError *err = NULL;
  if (!cxr_csv_reader_next (in->rows.csv, &row, &err))
    {
      if (err && !g_error_matches (err, CXR_ERROR, CXR_ERROR_IO))
        {
          /* a bad record is rejected, not the run: the reader goes on */
          in->sum->n_rows++;
          in->sum->n_rejected++;
          cxr__ingest_note (in->sum, "%s", err->message);
          g_error_free (err);
          *skip = TRUE;
          return TRUE;
        }
      if (err)
        g_propagate_error (error, err);
      return FALSE;
    }
  in->sum->n_rows++;
  if (!cxr__row_reader_parse (&in->rows, row, r))
    {
      in->sum->n_rejected++;
      cxr__scan_record_clear (r);
      *skip = TRUE;
    }
  return TRUE;
}

/* Opens the CSV of a NIH or manifest run and indexes the image folders. */
static gboolean
open_csv (Ingest *in, const char *path, GError **error)
{
  const CxrIngestOptions *opt = in->opt;
  GPtrArray *header = NULL; /* the reader's */
  in->rows.csv = cxr_csv_reader_open (path, error);
  if (in->rows.csv == NULL)
    return FALSE;
  g_autofree char *abs = g_canonicalize_filename (path, NULL);
  in->rows.base_dir = g_path_get_dirname (abs);
  GError *err = NULL;
  if (!cxr_csv_reader_next (in->rows.csv, &header, &err))
    {
      if (err == NULL)
        g_set_error (&err, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "%s: empty file, no header", path);
      g_propagate_error (error, err);
      return FALSE;
    }
  if (!cxr__row_reader_map_columns (&in->rows, header, error))
    return FALSE;
  if (in->source == SOURCE_MANIFEST)
    {
      char *real = realpath (in->rows.base_dir, NULL);
      if (real)
        g_ptr_array_add (in->inputs, real);
    }
  for (guint i = 0; i < opt->n_roots; i++)
    {
      if (!g_file_test (opt->image_roots[i], G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: not a folder", opt->image_roots[i]);
          return FALSE;
        }
      /* absolute, so that the paths stored hold from any folder */
      g_autofree char *root = g_canonicalize_filename (opt->image_roots[i], NULL);
      cxr__row_reader_index (&in->rows, root, 0);
      char *real = realpath (opt->image_roots[i], NULL);
      if (real)
        g_ptr_array_add (in->inputs, real);
    }
  return TRUE;
}

/* One window per store: analyze and the reports read every film with it. */
static gboolean
check_voi (Ingest *in, GError **error)
{
  CxrVoi had;
  gboolean found;
  if (!cxr_store_dicom_voi (in->store, &had, &found, error))
    return FALSE;
  if (found && had != in->opt->limits.voi)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: its DICOM films were ingested with --voi %s; this run asks for --voi %s "
                   "(one window per store)",
                   cxr_store_path (in->store), cxr_voi_name (had),
                   cxr_voi_name (in->opt->limits.voi));
      return FALSE;
    }
  return TRUE;
}

static gboolean
open_dicom (Ingest *in, const char *dir, GError **error)
{
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: not a folder", dir);
      return FALSE;
    }
  if (!check_voi (in, error))
    return FALSE;
  char *real = realpath (dir, NULL);
  if (real)
    g_ptr_array_add (in->inputs, real);
  in->walker = cxr__dicom_walker_new (dir);
  return TRUE;
}

/* The cache folder of a pull, made; the films are fetched once the run
 * holds the store (cxr__dicomweb_pull). */
static gboolean
open_dicomweb (Ingest *in, GError **error)
{
  if (!check_voi (in, error))
    return FALSE;
  const char *cache = in->opt->dicomweb.cache;
  in->cache = cache ? g_canonicalize_filename (cache, NULL)
                    : g_strconcat (cxr_store_path (in->store), ".dicomweb", NULL);
  if (g_mkdir_with_parents (in->cache, 0700) != 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot be made: %s", in->cache,
                   g_strerror (errno));
      return FALSE;
    }
  char *real = realpath (in->cache, NULL);
  if (real)
    g_ptr_array_add (in->inputs, real);
  return TRUE;
}

static gboolean
open_folder (Ingest *in, const char *dir, GError **error)
{
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: not a folder", dir);
      return FALSE;
    }
  char *real = realpath (dir, NULL);
  if (real)
    g_ptr_array_add (in->inputs, real);
  in->folder = cxr__folder_walker_new (dir);
  return TRUE;
}

static gboolean
run (CxrStore *store, const char *path, Source source, const CxrIngestOptions *opt,
     CxrIngestSummary *sum, GError **error)
{
  static const char *const commands[] = { "ingest --nih", "ingest --manifest", "ingest --dicom",
                                          "ingest --folder", "ingest --dicomweb" };
  g_return_val_if_fail (store != NULL && path != NULL && opt != NULL && sum != NULL, FALSE);
  if (sum->messages == NULL)
    cxr_ingest_summary_init (sum);

  Ingest in_ = { .store = store, .source = source, .opt = opt, .sum = sum };
  in_.rows.nih = source == SOURCE_NIH;
  in_.rows.opt = opt;
  in_.rows.sum = sum;
  Ingest *in = &in_;
  in->start_us = g_get_monotonic_time ();
  gboolean ok = FALSE;
  GError *err = NULL;
  guint max_in_flight = 0;
  int jobs;
  gboolean eof = FALSE;

  in->rows.files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  in->inputs = g_ptr_array_new_with_free_func (free);
  if (!(source == SOURCE_DICOM      ? open_dicom (in, path, &err)
        : source == SOURCE_FOLDER   ? open_folder (in, path, &err)
        : source == SOURCE_DICOMWEB ? open_dicomweb (in, &err)
                                    : open_csv (in, path, &err)))
    goto out;

  if (!cxr_store_lock (store, "ingest", &err))
    goto out;
  in->run_id = cxr_store_run_begin (store, commands[source], opt->argv, &err);
  if (in->run_id < 0)
    goto out;
  sum->run_id = in->run_id;
  in->writer = cxr__scan_writer_new (store, in->run_id, opt->batch_rows, &err);
  if (in->writer == NULL)
    goto out;
  if (source == SOURCE_DICOMWEB)
    {
      g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
      if (!cxr__dicomweb_pull (in->writer, path, in->cache, opt, sum, files, &err))
        goto drain;
      in->walker = cxr__dicom_walker_new_files (files);
    }

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
      Record r = { 0 };
      g_autofree char *why_invalid = NULL;
      gboolean skip;
      if (!next_record (in, &r, &why_invalid, &skip, &err))
        {
          if (err)
            goto drain;
          eof = TRUE;
          continue;
        }
      if (!skip && !cxr_shard_contains (&opt->shard, r.patient_id))
        {
          /* another machine's patient: not even its file is read */
          sum->n_other_shards++;
          cxr__scan_record_clear (&r);
          skip = TRUE;
        }
      if (!skip && !handle_record (in, &r, why_invalid, &err))
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
  if (in->rows.csv || in->walker || in->folder)
    report_progress (in, TRUE);
  sum->elapsed_s = (g_get_monotonic_time () - in->start_us) / 1e6;
  if (in->run_id > 0)
    {
      if (!ok && err)
        cxr__ingest_note (in->sum, "%s", err->message);
      write_run_counts (in, NULL);
      cxr_store_run_end (store, in->run_id, ok, NULL);
    }
  cxr__scan_writer_free (in->writer);
  if (in->done)
    g_async_queue_unref (in->done);
  if (in->in_flight)
    g_hash_table_unref (in->in_flight);
  if (in->rows.files)
    g_hash_table_unref (in->rows.files);
  if (in->inputs)
    g_ptr_array_unref (in->inputs);
  g_free (in->rows.base_dir);
  g_free (in->cache);
  cxr_csv_reader_free (in->rows.csv);
  cxr__dicom_walker_free (in->walker);
  cxr__folder_walker_free (in->folder);
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
  return run (store, csv_path, SOURCE_NIH, options, summary, error);
}

/**
 * cxr_ingest_manifest:
 * The generic format: a CSV with patient_id, path, and study_date,
 * day_offset or visit (docs/ingest.md, "Manifest format"); column names can be
 * mapped with options->column_map.
 */
gboolean
cxr_ingest_manifest (CxrStore *store, const char *manifest_path, const CxrIngestOptions *options,
                     CxrIngestSummary *summary, GError **error)
{
  return run (store, manifest_path, SOURCE_MANIFEST, options, summary, error);
}

/**
 * cxr_ingest_dicom:
 * @dir: a folder of DICOM files (a PACS export), walked recursively
 *
 * Ingests every chest film under @dir, the patient, visit order and
 * spacing taken from the headers (ingest-dicom.c says how); objects that
 * are not stored are counted as rejected rows, each noted with its file
 * and reason.
 */
gboolean
cxr_ingest_dicom (CxrStore *store, const char *dir, const CxrIngestOptions *options,
                  CxrIngestSummary *summary, GError **error)
{
  return run (store, dir, SOURCE_DICOM, options, summary, error);
}

/**
 * cxr_ingest_folder:
 * @dir: a folder of PNG or JPEG films, one folder per patient, each
 *   film's date in its name or its folders (ingest-folder.c says how)
 *
 * Ingests every film under @dir without a manifest; files that are not
 * stored are counted as rejected rows, each noted with its path and
 * reason, and undated films are stored invalid.
 */
gboolean
cxr_ingest_folder (CxrStore *store, const char *dir, const CxrIngestOptions *options,
                   CxrIngestSummary *summary, GError **error)
{
  return run (store, dir, SOURCE_FOLDER, options, summary, error);
}

/**
 * cxr_ingest_dicomweb:
 * @url: the PACS's DICOMweb root, e.g. http://pacs:8042/dicom-web
 *
 * Fetches the chest films of the PACS's CR and DX studies that the store
 * does not hold yet (options->dicomweb narrows and configures the pull)
 * into a cache folder, and stores them as cxr_ingest_dicom() does.
 * Studies and instances the server fails are counted in @summary
 * (n_fetch_failed) and noted; a later run fetches them. Returns %FALSE
 * when the studies cannot be searched or the store cannot be written.
 */
gboolean
cxr_ingest_dicomweb (CxrStore *store, const char *url, const CxrIngestOptions *options,
                     CxrIngestSummary *summary, GError **error)
{
  return run (store, url, SOURCE_DICOMWEB, options, summary, error);
}
