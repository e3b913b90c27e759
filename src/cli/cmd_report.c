/* SPDX-License-Identifier: MIT
 *
 * cxrtrack report: a patient's change report, or the cohort index.
 */
#include <errno.h>
#include <stdio.h>

#include "cli.h"
#include "cxr/cxr.h"

int
cmd_report (int argc, char **argv)
{
  g_autofree char *db = NULL, *patient = NULL, *out = NULL, *format = NULL, *shard = NULL;
  gboolean all = FALSE, index_only = FALSE, flagged = FALSE;
  int jobs = 0;
  GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Store", "DB" },
    { "patient", 'p', 0, G_OPTION_ARG_STRING, &patient, "One patient's report", "ID" },
    { "all", 'a', 0, G_OPTION_ARG_NONE, &all, "The cohort index and every patient's page", NULL },
    { "index-only", 0, 0, G_OPTION_ARG_NONE, &index_only, "With --all: the index alone", NULL },
    { "flagged", 0, 0, G_OPTION_ARG_NONE, &flagged,
      "With --all: the index and the pages of flagged patients only", NULL },
    CLI_SHARD_ENTRY (shard),
    { "jobs", 'j', 0, G_OPTION_ARG_INT, &jobs, "Pages written at once (default: one per core)",
      "N" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Folder to write to (created)", "DIR" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, "html (default) or json (--patient)", "FMT" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- write change reports");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (ctx, "report", NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (db == NULL || out == NULL || (patient == NULL) == !all || argc > 1)
    return cli_usage_error (ctx, "report needs --db, --out and one of --patient and --all");
  gboolean json = format && g_str_equal (format, "json");
  if (format && !json && !g_str_equal (format, "html"))
    return cli_usage_error (ctx, "unknown --format '%s' (html or json)", format);
  if (json && all)
    return cli_usage_error (ctx, "--format json is for one --patient");
  if ((flagged || shard || index_only) && !all)
    return cli_usage_error (ctx, "--flagged, --shard and --index-only go with --all");
  CxrReportOptions ro = { .pages = !index_only, .flagged = flagged, .jobs = jobs };
  int rc = CXR_EXIT_OK;
  if (!cli_shard (ctx, shard, &ro.shard, &rc))
    return rc;
  /* read-only, so that a store on a read-only mount or in a shared
   * archive is reported; an older store is migrated first, like every
   * command does, and that needs writing */
  g_autoptr (CxrStore) store
      = cxr_store_open (db, CXR_STORE_READ_ONLY | CXR_STORE_NO_CREATE, &error);
  if (store && cxr_store_schema_version (store) < cxr_store_latest_version ())
    {
      g_clear_pointer (&store, cxr_store_free);
      store = cxr_store_open (db, CXR_STORE_NO_CREATE, &error);
    }
  if (store == NULL)
    return cli_fail (error);
  if (cxr_store_note (store))
    fprintf (stderr, "report: %s\n", cxr_store_note (store));
  /* reports hold patient data: for their owner only */
  if (g_mkdir_with_parents (out, 0700) != 0)
    {
      fprintf (stderr, "cxrtrack: %s: cannot create: %s\n", out, g_strerror (errno));
      return CXR_EXIT_FAILURE;
    }
  gint64 t0 = g_get_monotonic_time ();
  CxrReportStats stats = { 0 };
  g_autofree char *p = NULL;
  if (patient)
    {
      p = cxr_report_patient (store, patient, out, json ? CXR_REPORT_JSON : CXR_REPORT_HTML, &stats,
                              &error);
      if (p == NULL)
        return cli_fail (error);
      printf ("report: %s\n", p);
    }
  else
    {
      p = cxr_report_cohort (store, out, &ro, &stats, &error);
      if (p == NULL)
        return cli_fail (error);
      printf ("report: %s and %u patient pages in %.2f s\n", p, stats.n_pages,
              (g_get_monotonic_time () - t0) / 1e6);
    }
  if (stats.n_missing_artifacts)
    fprintf (stderr,
             "report: warning: %u difference maps named in the store are not in %s.artifacts/"
             " (was the store copied or renamed without its artifacts folder?)\n",
             stats.n_missing_artifacts, db);
  if (stats.n_changed_films)
    fprintf (stderr,
             "report: warning: %u films changed on disk since they were ingested: not shown\n",
             stats.n_changed_films);
  return CXR_EXIT_OK;
}
