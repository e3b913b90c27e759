/* SPDX-License-Identifier: MIT
 *
 * cxrtrack calibrate: the test-retest limits a store's flags are judged
 * against, derived from its films (or copied from another store), then
 * printed.
 */
#include <stdio.h>

#include "cli.h"
#include "cxr/cxr.h"

static void
on_row (int n, const CxrValue *v, gpointer data)
{
  (void) data;
  if (n == 4)
    printf ("  %-34s %10.6f  from %3" G_GINT64_FORMAT " film/copy pairs  %s\n", v[0].text,
            v[1].real, v[2].integer, v[3].text);
}

int
cmd_calibrate (int argc, char **argv)
{
  g_autofree char *db = NULL, *model_path = NULL, *lung_path = NULL, *limits_from = NULL;
  g_autofree char *config = NULL, *samples = NULL;
  gboolean force = FALSE, no_lungs = FALSE;
  GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Store", "DB" },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
      "Classifier (default: $CXRTRACK_MODEL, else cxr-default)", "FILE" },
    { "lung-model", 0, 0, G_OPTION_ARG_FILENAME, &lung_path,
      "Lung segmenter, for the lung-area limits (default: $CXRTRACK_LUNG_MODEL, else cxr-lungs)",
      "FILE" },
    { "no-lungs", 0, 0, G_OPTION_ARG_NONE, &no_lungs, "No lung-area limits", NULL },
    { "limits-from", 0, 0, G_OPTION_ARG_FILENAME, &limits_from,
      "Copy the limits of this store instead of deriving them", "STORE" },
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, "Derive them again when the store has them", NULL },
    { "samples", 0, 0, G_OPTION_ARG_FILENAME, &samples,
      "Also write every film/copy difference as CSV (film_sha256,signal,value)", "CSV" },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
      "calib_films and calib_copies ([progression] keys)", "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- derive test-retest limits");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (ctx, "calibrate", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *cmdline = cli_join_argv (argc, argv);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (db == NULL || argc > 1)
    return cli_usage_error (ctx, "calibrate needs --db and nothing else");
  int rc = CXR_EXIT_OK;
  g_autoptr (CxrModel) model = NULL;
  g_autoptr (CxrLungModel) lungs = NULL;
  if (!cli_load_models (ctx, "calibrate", model_path, FALSE, lung_path, no_lungs, &model, &lungs,
                        &rc))
    return rc;
  if (model == NULL)
    return cli_usage_error (ctx, "calibrate needs a classifier (--model FILE)");
  g_autoptr (CxrSeverityModel) severity = NULL;
  if (!cli_load_severity (ctx, "calibrate", NULL, FALSE, model, &severity, &rc))
    return rc;
  g_autoptr (CxrStore) store = cxr_store_open (db, CXR_STORE_NO_CREATE, &error);
  if (store == NULL)
    return cli_fail (error);
  CxrAnalyzeOptions opt;
  cxr_analyze_options_init (&opt);
  opt.model = model;
  opt.lung_model = lungs;
  opt.severity = severity;
  opt.limits_from = limits_from;
  opt.progression.samples_path = samples;
  g_autofree char *reference = cli_default_reference_limits ();
  opt.progression.reference_limits = reference;
  if (reference && !cxr_progression_check_reference (reference, &error))
    return cli_fail (error);
  opt.argv = cmdline;
  if (config && !cxr_progression_load_config (config, &opt.progression, &error))
    return cli_fail (error);
  gint64 t0 = g_get_monotonic_time ();
  if (!cxr_pipeline_calibrate (store, &opt, force, &error))
    return cli_fail (error);
  printf ("calibrate: %s in %.1f s\n", limits_from ? "copied" : "derived",
          (g_get_monotonic_time () - t0) / 1e6);
  g_autofree char *sql = g_strdup_printf (
      "SELECT signal, limit_value, n_copies, method"
      " FROM retest_limits JOIN models USING (model_id) WHERE sha256 = '%s' ORDER BY signal",
      cxr_model_sha256 (model));
  CxrQueryHandler h = { NULL, on_row, NULL };
  if (!cxr_store_query (store, sql, &h, NULL, &error))
    return cli_fail (error);
  return CXR_EXIT_OK;
}
