/* SPDX-License-Identifier: MIT
 *
 * cxrtrack merge: shard stores into one (store-merge.c), then the
 * cohort-wide pass over the merged store that a shard cannot make on its
 * own: the test-retest limits from the cohort's first films, the
 * visit-to-visit limits from all its pairs, and every patient's flags.
 */
#include <stdio.h>

#include "cli.h"
#include "cxr/cxr.h"

static void
print_merge (const char *shard, const CxrMergeSummary *m)
{
  if (m->skipped)
    {
      printf ("merge: %s: unchanged since it was merged: skipped\n", shard);
      return;
    }
  printf ("merge: %s: %" G_GUINT64_FORMAT " films (%" G_GUINT64_FORMAT " new), %" G_GUINT64_FORMAT
          " result rows, %" G_GUINT64_FORMAT " artifacts, %" G_GUINT64_FORMAT " conflicts\n",
          shard, m->n_scans, m->n_new_scans, m->n_rows, m->n_artifacts, m->n_conflicts);
  if (m->n_artifacts_missing)
    printf ("  %" G_GUINT64_FORMAT " artifacts named by its rows are missing from its folder\n",
            m->n_artifacts_missing);
  for (guint i = 0; i < m->messages->len; i++)
    printf ("    %s\n", (const char *) m->messages->pdata[i]);
  if (m->n_messages > m->messages->len)
    printf ("    ... and %" G_GUINT64_FORMAT " more\n", m->n_messages - m->messages->len);
}

/* Whether @store has @sha256's results; says what is skipped if not. */
static gboolean
known (CxrStore *store, const char *what, const char *name, const char *sha256)
{
  gboolean k = FALSE;
  g_autoptr (GError) error = NULL;
  if (!cxr_store_has_model (store, sha256, &k, &error))
    fprintf (stderr, "cxrtrack: %s\n", error->message);
  else if (!k)
    printf ("merge: the %s %s (sha256 %.12s) made none of the merged results:"
            " not used (name the one the shards used with --model / --lung-model)\n",
            what, name, sha256);
  return k;
}

int
cmd_merge (int argc, char **argv)
{
  g_autofree char *db = NULL, *model_path = NULL, *lung_path = NULL;
  gboolean no_analyze = FALSE, no_lungs = FALSE;
  int jobs = 0;
  GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Store to merge into (created if absent)", "DB" },
    { "no-analyze", 0, 0, G_OPTION_ARG_NONE, &no_analyze,
      "Copy only: no test-retest limits and flags over the merged cohort", NULL },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
      "The classifier the shards used (default: $CXRTRACK_MODEL, else cxr-default)", "FILE" },
    { "lung-model", 0, 0, G_OPTION_ARG_FILENAME, &lung_path,
      "The lung segmenter the shards used (default: $CXRTRACK_LUNG_MODEL, else cxr-lungs)",
      "FILE" },
    { "no-lungs", 0, 0, G_OPTION_ARG_NONE, &no_lungs, "The shards ran without lung fields", NULL },
    { "jobs", 'j', 0, G_OPTION_ARG_INT, &jobs,
      "Patients in parallel, for work a shard left undone (default: one per core)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("SHARD.sqlite... - merge shard stores");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (ctx, "merge", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *cmdline = cli_join_argv (argc, argv);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (db == NULL || argc < 2)
    return cli_usage_error (ctx, "merge needs --db and at least one store to merge");
  int rc = CXR_EXIT_OK;
  g_autoptr (CxrModel) model = NULL;
  g_autoptr (CxrLungModel) lungs = NULL;
  if (!no_analyze
      && !cli_load_models (ctx, "merge", model_path, FALSE, lung_path, no_lungs, &model, &lungs,
                           &rc))
    return rc;

  g_autoptr (CxrStore) store = cxr_store_open (db, CXR_STORE_READ_WRITE, &error);
  if (store == NULL || !cxr_store_lock (store, "merge", &error))
    return cli_fail (error);
  gint64 run = cxr_store_run_begin (store, "merge", cmdline, &error);
  if (run < 0)
    return cli_fail (error);
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok = TRUE;
  guint64 n_conflicts = 0;
  for (int i = 1; ok && i < argc; i++)
    {
      CxrMergeSummary m;
      cxr_merge_summary_init (&m);
      ok = cxr_store_merge (store, argv[i], run, &m, &error);
      if (ok)
        print_merge (argv[i], &m);
      n_conflicts += m.n_conflicts;
      cxr_merge_summary_clear (&m);
    }
  cxr_store_run_end (store, run, ok, NULL);
  if (!ok)
    return cli_fail (error);
  printf ("merge: %d stores into %s in %.1f s\n", argc - 1, db,
          (g_get_monotonic_time () - t0) / 1e6);
  if (no_analyze || model == NULL)
    return n_conflicts ? CXR_EXIT_FAILURE : CXR_EXIT_OK;

  /* the cohort-wide pass, with the models the shards used */
  if (!known (store, "classifier", cxr_model_name (model), cxr_model_sha256 (model)))
    return CXR_EXIT_FAILURE;
  if (lungs
      && !known (store, "lung segmenter", cxr_lung_model_name (lungs),
                 cxr_lung_model_sha256 (lungs)))
    g_clear_pointer (&lungs, cxr_lung_model_free);
  /* the default zone-score head, where the shards scored with it */
  g_autoptr (CxrSeverityModel) severity = NULL;
  if (!cli_load_severity (ctx, "merge", NULL, FALSE, model, &severity, &rc))
    return rc;
  gboolean head_known = FALSE;
  if (severity
      && (!cxr_store_has_model (store, cxr_severity_model_sha256 (severity), &head_known, NULL)
          || !head_known))
    g_clear_pointer (&severity, cxr_severity_model_free);
  CxrAnalyzeOptions opt;
  cxr_analyze_options_init (&opt);
  opt.model = model;
  opt.lung_model = lungs;
  opt.severity = severity;
  g_autofree char *reference = cli_default_reference_limits ();
  opt.progression.reference_limits = reference;
  if (reference && !cxr_progression_check_reference (reference, &error))
    return cli_fail (error);
  opt.jobs = jobs;
  opt.argv = cmdline;
  CxrAnalyzeSummary s;
  cxr_analyze_summary_init (&s);
  ok = cxr_pipeline_analyze (store, &opt, &s, &error);
  if (ok || s.n_patients_done > 0)
    cli_print_analyze (&s, &opt);
  cxr_analyze_summary_clear (&s);
  if (!ok)
    return cli_fail (error);
  return n_conflicts ? CXR_EXIT_FAILURE : CXR_EXIT_OK;
}
