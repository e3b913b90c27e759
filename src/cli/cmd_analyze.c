/* SPDX-License-Identifier: MIT
 *
 * cxrtrack analyze: run the pipeline over every patient with pending work
 * (registration, classifier, difference maps), then the progression flags.
 */
#include <stdio.h>

#include "cli.h"
#include "cxr/cxr.h"

static void
progress_cb (const CxrAnalyzeSummary *s, double fraction, gpointer data)
{
  char extra[96];
  g_snprintf (extra, sizeof extra, "pairs %" G_GUINT64_FORMAT " (ok %" G_GUINT64_FORMAT ")",
              s->n_pairs, s->n_ok);
  cli_progress_show (data, s->n_patients_done, fraction, extra);
}

/* The classifier and the lung segmenter of --model / --lung-model, or
 * the defaults, or none (--no-model, --no-lungs); FALSE with *@rc set. */
gboolean
cli_load_models (GOptionContext *ctx, const char *command, const char *model_arg, gboolean no_model,
                 const char *lung_arg, gboolean no_lungs, CxrModel **model, CxrLungModel **lungs,
                 int *rc)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *model_path = g_strdup (model_arg), *lung_path = g_strdup (lung_arg);
  *model = NULL;
  *lungs = NULL;
  if (no_model && model_path)
    {
      *rc = cli_usage_error (ctx, "--model and --no-model exclude each other");
      return FALSE;
    }
  if (!no_model && model_path == NULL && (model_path = cli_default_model ()) == NULL)
    g_printerr ("%s: the default model (cxr-default.safetensors) was not found: running without"
                " the classifier; name one with --model FILE or $CXRTRACK_MODEL\n",
                command);
  if (model_path && (*model = cxr_model_load (model_path, &error)) == NULL)
    {
      *rc = cli_fail (error);
      return FALSE;
    }
  if (no_lungs && lung_path)
    {
      g_clear_pointer (model, cxr_model_free);
      *rc = cli_usage_error (ctx, "--lung-model and --no-lungs exclude each other");
      return FALSE;
    }
  if (!no_lungs && lung_path == NULL && (lung_path = cli_default_lung_model ()) == NULL)
    g_printerr ("%s: the lung segmenter (cxr-lungs.safetensors) was not found: running"
                " without lung fields; name one with --lung-model FILE or $CXRTRACK_LUNG_MODEL\n",
                command);
  if (lung_path && (*lungs = cxr_lung_model_load (lung_path, &error)) == NULL)
    {
      g_clear_pointer (model, cxr_model_free);
      *rc = cli_fail (error);
      return FALSE;
    }
  return TRUE;
}

/* The zone-score head of --severity-model (@path), or the default one;
 * none with @no_severity or without a classifier. The default head reads
 * the default classifier: with another one there is no severity (said on
 * stderr), while a named head that does not fit is an error. FALSE with
 * *@rc set. */
gboolean
cli_load_severity (GOptionContext *ctx, const char *command, const char *path, gboolean no_severity,
                   const CxrModel *model, CxrSeverityModel **out, int *rc)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *p = g_strdup (path);
  *out = NULL;
  if (no_severity && path)
    {
      *rc = cli_usage_error (ctx, "--severity-model and --no-severity exclude each other");
      return FALSE;
    }
  if (path && model == NULL)
    {
      *rc = cli_usage_error (ctx, "--severity-model needs the classifier");
      return FALSE;
    }
  if (no_severity || model == NULL || (p == NULL && (p = cli_default_severity_model ()) == NULL))
    return TRUE;
  g_autoptr (CxrSeverityModel) head = cxr_severity_model_load (p, &error);
  if (head == NULL)
    {
      *rc = cli_fail (error);
      return FALSE;
    }
  if (!cxr_severity_model_check (head, model, &error))
    {
      if (path)
        {
          *rc = cli_fail (error);
          return FALSE;
        }
      g_printerr ("%s: no Brixia zone scores: %s\n", command, error->message);
      return TRUE;
    }
  *out = g_steal_pointer (&head);
  return TRUE;
}

/* What an analyze run did, as `cxrtrack analyze` prints it. */
void
cli_print_analyze (const CxrAnalyzeSummary *s, const CxrAnalyzeOptions *opt)
{
  const CxrModel *model = opt->model;
  if (s->run_id > 0)
    printf ("analyze: %" G_GUINT64_FORMAT " patients in %.1f s (run %" G_GINT64_FORMAT ")\n",
            s->n_patients_done, s->elapsed_s, s->run_id);
  else
    printf ("analyze: %" G_GUINT64_FORMAT " patients in %.1f s (no run recorded)\n",
            s->n_patients_done, s->elapsed_s);
  printf ("  registrations %" G_GUINT64_FORMAT ": ok %" G_GUINT64_FORMAT
          ", low_confidence %" G_GUINT64_FORMAT ", failed %" G_GUINT64_FORMAT
          "; cross-view %" G_GUINT64_FORMAT ", not chaining %" G_GUINT64_FORMAT
          " (information); %.0f ms per pair\n",
          s->n_pairs, s->n_ok, s->n_low, s->n_failed, s->n_cross_view, s->n_intransitive,
          s->n_pairs ? s->register_ms / s->n_pairs : 0.0);
  if (s->n_upside_down)
    printf (
        "  films stored upside down (their pairs failed, scans.orientation set): %" G_GUINT64_FORMAT
        "\n",
        s->n_upside_down);
  if (opt->lung_model)
    printf ("  lung fields of %" G_GUINT64_FORMAT " films (%" G_GUINT64_FORMAT
            " implausible), %.0f ms per film\n",
            s->n_lungs, s->n_lungs_implausible, s->n_lungs ? s->lungs_ms / s->n_lungs : 0.0);
  if (!opt->no_diff)
    printf ("  difference maps %" G_GUINT64_FORMAT ", %.0f ms per pair\n", s->n_diffs,
            s->n_diffs ? s->diff_ms / s->n_diffs : 0.0);
  if (model)
    printf ("  films scored with %s (%s, sha256 %.12s): %" G_GUINT64_FORMAT ", %.0f ms per film\n",
            cxr_model_name (model), cxr_model_architecture (model), cxr_model_sha256 (model),
            s->n_inferred, s->n_inferred ? s->infer_ms / s->n_inferred : 0.0);
  if (opt->severity)
    printf ("  Brixia zones scored with %s (sha256 %.12s): %" G_GUINT64_FORMAT
            " films (%" G_GUINT64_FORMAT " implausible), %.1f ms per film\n",
            cxr_severity_model_name (opt->severity), cxr_severity_model_sha256 (opt->severity),
            s->n_severity, s->n_severity_implausible,
            s->n_severity ? s->severity_ms / s->n_severity : 0.0);
  if (model)
    printf (
        "  pair signals (embedding, probabilities, lung areas; any registration status): %" G_GUINT64_FORMAT
        " rows\n",
        s->n_pair_signals);
  if (model && opt->no_flags)
    printf ("  progression: not flagged here (--no-flags: after the merge, over the cohort)\n");
  else if (model)
    printf ("  progression: %" G_GUINT64_FORMAT
            " patients flagged (slow_progression, acute_change or unconfirmed_change), every"
            " patient of the store judged again\n",
            s->n_flagged);
  for (guint i = 0; i < s->messages->len; i++)
    printf ("    %s\n", (const char *) s->messages->pdata[i]);
}

int
cmd_analyze (int argc, char **argv)
{
  g_autofree char *db = NULL, *model_path = NULL, *config = NULL, *lung_path = NULL;
  g_autofree char *shard = NULL, *limits_from = NULL, *severity_path = NULL, *map_region = NULL;
  int jobs = 0;
  gboolean no_diff = FALSE, no_model = FALSE, no_lungs = FALSE, no_deform = FALSE,
           map_deform = FALSE, no_flags = FALSE, no_orient = FALSE, no_severity = FALSE;
  GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Store", "DB" },
    { "jobs", 'j', 0, G_OPTION_ARG_INT, &jobs, "Patients in parallel (default: one per core)",
      "N" },
    CLI_SHARD_ENTRY (shard),
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
      "Classifier weights (safetensors) to embed and score every frontal film with"
      " (default: $CXRTRACK_MODEL, else cxr-default)",
      "FILE" },
    { "no-model", 0, 0, G_OPTION_ARG_NONE, &no_model,
      "No classifier: registration and pixel difference maps only, no progression flags", NULL },
    { "no-diff", 0, 0, G_OPTION_ARG_NONE, &no_diff, "Skip difference maps", NULL },
    { "lung-model", 0, 0, G_OPTION_ARG_FILENAME, &lung_path,
      "Lung segmenter (default: $CXRTRACK_LUNG_MODEL, else cxr-lungs)", "FILE" },
    { "no-lungs", 0, 0, G_OPTION_ARG_NONE, &no_lungs,
      "No lung fields: registration and maps over the thorax window", NULL },
    { "severity-model", 0, 0, G_OPTION_ARG_FILENAME, &severity_path,
      "Zone-score head for the Brixia score of every frontal film (default:"
      " $CXRTRACK_SEVERITY_MODEL, else cxr-severity; it reads the default classifier's features)",
      "FILE" },
    { "no-severity", 0, 0, G_OPTION_ARG_NONE, &no_severity, "No Brixia zone scores", NULL },
    { "no-deform", 0, 0, G_OPTION_ARG_NONE, &no_deform,
      "Registration by the global (similarity) stage only", NULL },
    { "map-deform", 0, 0, G_OPTION_ARG_NONE, &map_deform,
      "Difference maps through the deformable field as well (default: the global transform)",
      NULL },
    { "map-region", 0, 0, G_OPTION_ARG_STRING, &map_region,
      "With lung fields, compare the lung fields alone (lungs) or the whole lung, behind the"
      " heart and below the domes too (whole_lung, the default)",
      "lungs|whole_lung" },
    { "no-orientation-check", 0, 0, G_OPTION_ARG_NONE, &no_orient,
      "Do not look for films stored upside down (where a pair does not line up)", NULL },
    { "no-flags", 0, 0, G_OPTION_ARG_NONE, &no_flags,
      "Stop before the test-retest limits and progression flags (a shard: merge derives them)",
      NULL },
    { "limits-from", 0, 0, G_OPTION_ARG_FILENAME, &limits_from,
      "Flag against the test-retest limits of this store (e.g. the cohort's), not derived here",
      "STORE" },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
      "Progression thresholds ([progression] alpha, confirm, acute_factor, ...)", "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("- register, score and compare every pending film and pair");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (ctx, "analyze", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *cmdline = cli_join_argv (argc, argv);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (db == NULL || argc > 1)
    return cli_usage_error (ctx, "analyze needs --db and nothing else");
  CxrAnalyzeOptions opt;
  cxr_analyze_options_init (&opt);
  int rc = CXR_EXIT_OK;
  if (!cli_shard (ctx, shard, &opt.shard, &rc))
    return rc;

  g_autoptr (CxrStore) store = cxr_store_open (db, CXR_STORE_NO_CREATE, &error);
  if (store == NULL)
    return cli_fail (error);
  g_autoptr (CxrModel) model = NULL;
  g_autoptr (CxrLungModel) lungs = NULL;
  if (!cli_load_models (ctx, "analyze", model_path, no_model, lung_path, no_lungs, &model, &lungs,
                        &rc))
    return rc;
  if (limits_from && model == NULL)
    return cli_usage_error (ctx, "--limits-from needs the classifier");
  g_autoptr (CxrSeverityModel) severity = NULL;
  if (!cli_load_severity (ctx, "analyze", severity_path, no_severity, model, &severity, &rc))
    return rc;
  opt.model = model;
  opt.lung_model = lungs;
  opt.severity = severity;
  g_autofree char *reference = cli_default_reference_limits ();
  opt.progression.reference_limits = reference;
  if (reference && !cxr_progression_check_reference (reference, &error))
    return cli_fail (error);
  opt.no_diff = no_diff;
  opt.no_flags = no_flags;
  opt.limits_from = limits_from;
  opt.reg.no_deform = no_deform;
  opt.no_orientation_check = no_orient;
  opt.map_deform = map_deform;
  if (map_region && g_strcmp0 (map_region, "whole_lung") == 0)
    opt.diff.region = CXR_DIFF_REGION_WHOLE_LUNG;
  else if (map_region && g_strcmp0 (map_region, "lungs") == 0)
    opt.diff.region = CXR_DIFF_REGION_LUNG_FIELDS;
  else if (map_region)
    return cli_usage_error (ctx, "--map-region %s: lungs or whole_lung", map_region);
  if (config && !cxr_progression_load_config (config, &opt.progression, &error))
    return cli_fail (error);
  opt.jobs = jobs;
  opt.argv = cmdline;
  CliProgress prog;
  cli_progress_init (&prog, "patients");
  opt.progress = progress_cb;
  opt.progress_data = &prog;
  CxrAnalyzeSummary s;
  cxr_analyze_summary_init (&s);
  gboolean ok = cxr_pipeline_analyze (store, &opt, &s, &error);
  cli_progress_end (&prog);
  /* after a fatal error, a summary only of work that was done */
  if (ok || s.n_patients_done > 0)
    cli_print_analyze (&s, &opt);
  cxr_analyze_summary_clear (&s);
  return ok ? CXR_EXIT_OK : cli_fail (error);
}
