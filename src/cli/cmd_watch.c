/* SPDX-License-Identifier: MIT
 *
 * cxrtrack watch: follow a PACS. Every --interval seconds: pull the films
 * the store lacks (ingest --dicomweb; a study whose instance count has not
 * changed since it was pulled whole is not listed again), analyze what is
 * pending, and push the comparisons of the patients whose films arrived.
 * One line per poll that did something, one per failure.
 *
 * Nothing is lost to a network error or a kill: the store is written in
 * transactions, the pull fetches only what is not stored, analyze picks
 * up pending work, and the push sends only what the PACS lacks. So a poll
 * that fails is retried after a backoff (doubling from --interval up to
 * ten minutes), and a watcher started again begins with one poll that
 * analyzes whatever is pending and pushes every patient's comparisons
 * (what the PACS holds already is not sent again).
 */
#include <stdio.h>

#include "cli.h"
#include "cxr/cxr.h"

#define BACKOFF_MAX_S 600.0

static void
patient_row (int n, const CxrValue *v, gpointer data)
{
  if (n == 1 && v[0].type == CXR_VALUE_TEXT)
    g_ptr_array_add (data, g_strdup (v[0].text));
}

/* The patients whose films ingest run @run_id stored (NULL-terminated). */
static GStrv
patients_of_run (CxrStore *store, gint64 run_id, GError **error)
{
  GPtrArray *ids = g_ptr_array_new ();
  g_autofree char *sql = g_strdup_printf (
      "SELECT DISTINCT patient_id FROM scans WHERE run_id = %" G_GINT64_FORMAT, run_id);
  const CxrQueryHandler h = { NULL, patient_row, NULL };
  if (!cxr_store_query (store, sql, &h, ids, error))
    {
      g_ptr_array_free (ids, TRUE);
      return NULL;
    }
  g_ptr_array_add (ids, NULL);
  return (GStrv) g_ptr_array_free (ids, FALSE);
}

static char *
now_text (void)
{
  g_autoptr (GDateTime) t = g_date_time_new_now_local ();
  return g_date_time_format (t, "%F %T");
}

typedef struct {
  CxrStore *store;
  const char *url;
  CxrIngestOptions *ingest;
  CxrAnalyzeOptions *analyze;
  CxrPushOptions *push;
} Watch;

static void
print_messages (GPtrArray *messages)
{
  for (guint i = 0; messages && i < messages->len; i++)
    printf ("    %s\n", (const char *) messages->pdata[i]);
}

/* One poll: pull, analyze, push. @everyone: analyze and push every
 * patient even if nothing new arrived (the first poll, and the one after a
 * failure). FALSE when the PACS or the store failed it (@error). */
static gboolean
poll_once (Watch *w, gboolean everyone, GError **error)
{
  gint64 t0 = g_get_monotonic_time ();
  CxrIngestSummary in;
  cxr_ingest_summary_init (&in);
  gboolean ok = cxr_ingest_dicomweb (w->store, w->url, w->ingest, &in, error);
  guint64 stored = in.n_ok + in.n_invalid;
  gint64 run_id = in.run_id;
  g_autofree char *when = now_text ();
  if (ok && (stored || in.n_fetch_failed || everyone))
    {
      printf ("watch: %s: %" G_GUINT64_FORMAT " studies (%" G_GUINT64_FORMAT
              " unchanged), %" G_GUINT64_FORMAT " films fetched, %" G_GUINT64_FORMAT
              " stored, %" G_GUINT64_FORMAT " failed\n",
              when, in.n_studies, in.n_studies_same, in.n_fetched, stored, in.n_fetch_failed);
      print_messages (in.messages);
    }
  cxr_ingest_summary_clear (&in);
  if (!ok)
    return FALSE;
  if (stored == 0 && !everyone)
    return TRUE;

  CxrAnalyzeSummary as;
  cxr_analyze_summary_init (&as);
  ok = cxr_pipeline_analyze (w->store, w->analyze, &as, error);
  if (ok)
    printf ("  analyze: %" G_GUINT64_FORMAT " patients, %" G_GUINT64_FORMAT
            " registrations, %" G_GUINT64_FORMAT " maps, %" G_GUINT64_FORMAT " flagged\n",
            as.n_patients_done, as.n_pairs, as.n_diffs, as.n_flagged);
  cxr_analyze_summary_clear (&as);
  if (!ok)
    return FALSE;

  g_auto (GStrv) patients = NULL;
  if (!everyone && (patients = patients_of_run (w->store, run_id, error)) == NULL)
    return FALSE;
  w->push->patients = (const char *const *) patients;
  CxrPushSummary ps;
  cxr_push_summary_init (&ps);
  ok = cxr_push (w->store, w->url, w->push, &ps, error);
  w->push->patients = NULL;
  printf ("  push: %" G_GUINT64_FORMAT " films compared with a prior, %" G_GUINT64_FORMAT
          " objects sent, %" G_GUINT64_FORMAT " already in the PACS, %" G_GUINT64_FORMAT
          " failed (%.1f s since the poll began)\n",
          ps.n_films, ps.n_sent, ps.n_present, ps.n_failed, (g_get_monotonic_time () - t0) / 1e6);
  print_messages (ps.messages);
  cxr_push_summary_clear (&ps);
  return ok;
}

int
cmd_watch (int argc, char **argv)
{
  g_autofree char *db = NULL, *url = NULL, *cache = NULL;
  g_auto (GStrv) patients = NULL;
  double interval_s = 30;
  g_auto (CliDicomweb) web;
  cli_dicomweb_init (&web);
  int polls = 0, jobs = 0;
  GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Store (created if absent)", "DB" },
    { "dicomweb", 0, 0, G_OPTION_ARG_STRING, &url,
      "The PACS's DICOMweb root (http://pacs:8042/dicom-web)", "URL" },
    { "interval", 0, 0, G_OPTION_ARG_DOUBLE, &interval_s, "Seconds between polls (30)", "S" },
    CLI_DICOMWEB_ENTRIES (web),
    { "patient", 0, 0, G_OPTION_ARG_STRING_ARRAY, &patients, "Only this Patient ID (repeatable)",
      "ID" },
    { "cache", 0, 0, G_OPTION_ARG_FILENAME, &cache,
      "Folder the films are fetched into (default: DB.dicomweb)", "DIR" },
    { "jobs", 'j', 0, G_OPTION_ARG_INT, &jobs, "Patients analyzed in parallel (one per core)",
      "N" },
    { "polls", 0, 0, G_OPTION_ARG_INT, &polls,
      "Stop after N polls (default: never; 1 for a cron job)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- follow a PACS: pull, analyze, push");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (ctx, "watch",
                "A failed poll (the PACS down, an error answer) is one line, then retried after\n"
                "a backoff; nothing stored is lost, and a watcher started again resumes\n"
                "(docs/pacs.md, \"Watch\").");
  g_autoptr (GError) error = NULL;
  g_autofree char *cmdline = cli_join_argv (argc, argv);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (db == NULL || url == NULL || argc > 1)
    return cli_usage_error (ctx, "watch needs --db and --dicomweb, and nothing else");
  if (!(interval_s > 0) || polls < 0)
    return cli_usage_error (ctx, "--interval must be positive, --polls not negative");
  int rc = CXR_EXIT_OK;
  if (!cli_dicomweb_check (ctx, &web, &rc))
    return rc;
  const char *credentials = web.auth;
  g_autoptr (GHashTable) counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  CxrIngestOptions in;
  cxr_ingest_options_init (&in);
  in.argv = cmdline;
  in.jobs = jobs;
  in.dicomweb.auth = credentials;
  in.dicomweb.cache = cache;
  in.dicomweb.ca_file = web.cacert;
  in.dicomweb.patients = (const char *const *) patients;
  in.dicomweb.timeout_s = web.timeout_s;
  in.dicomweb.study_counts = counts;

  g_autoptr (CxrModel) model = NULL;
  g_autoptr (CxrLungModel) lungs = NULL;
  g_autoptr (CxrSeverityModel) severity = NULL;
  if (!cli_load_models (ctx, "watch", NULL, FALSE, NULL, FALSE, &model, &lungs, &rc)
      || !cli_load_severity (ctx, "watch", NULL, FALSE, model, &severity, &rc))
    return rc;
  CxrAnalyzeOptions an;
  cxr_analyze_options_init (&an);
  an.model = model;
  an.lung_model = lungs;
  an.severity = severity;
  an.jobs = jobs;
  an.argv = cmdline;
  g_autofree char *reference = cli_default_reference_limits ();
  an.progression.reference_limits = reference;
  CxrPushOptions push = { .auth = credentials, .ca_file = web.cacert, .timeout_s = web.timeout_s };

  g_autoptr (CxrStore) store = cxr_store_open (db, CXR_STORE_READ_WRITE, &error);
  if (store == NULL)
    return cli_fail (error);
  Watch w = { store, url, &in, &an, &push };
  double wait_s = interval_s;
  gboolean catch_up = TRUE; /* the first poll: whatever a watcher before left */
  setvbuf (stdout, NULL, _IOLBF, 0);
  for (int n = 1; polls == 0 || n <= polls; n++)
    {
      g_clear_error (&error);
      if (poll_once (&w, catch_up, &error))
        {
          catch_up = FALSE;
          wait_s = interval_s;
          rc = CXR_EXIT_OK;
        }
      else
        {
          g_autofree char *when = now_text ();
          rc = CXR_EXIT_FAILURE;
          catch_up = TRUE; /* the next poll analyzes what is pending and pushes everyone */
          if (g_error_matches (error, CXR_ERROR, CXR_ERROR_DB)
              || g_error_matches (error, CXR_ERROR, CXR_ERROR_SCHEMA_VERSION))
            return cli_fail (error); /* the store: no retry mends it */
          printf ("watch: %s: poll failed: %s; next try in %.0f s\n", when, error->message, wait_s);
          if (polls == 0 || n < polls)
            g_usleep ((gulong) (wait_s * G_USEC_PER_SEC));
          wait_s = MIN (wait_s * 2, BACKOFF_MAX_S);
          continue;
        }
      if (polls == 0 || n < polls)
        g_usleep ((gulong) (interval_s * G_USEC_PER_SEC));
    }
  return rc;
}
