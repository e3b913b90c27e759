/* SPDX-License-Identifier: MIT
 *
 * cxrtrack severity FILM...: the Brixia score of each film (six lung zones
 * 0-3, the global 0-18, a status and its reason), as text or one JSON
 * object per film. --features prints each zone's features instead of
 * needing a head: what tools/train_severity.py fits the head on.
 */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "cxr/cxr.h"

static void
print_number (GString *out, double v)
{
  if (isfinite (v))
    g_string_append_printf (out, "%.4g", v);
  else
    g_string_append (out, "null");
}

static void
print_json (GString *out, const char *file, const CxrSeverity *s, const char *head,
            gboolean features)
{
  g_autofree char *f = g_strescape (file, NULL);
  g_string_append_printf (out, "{\"file\": \"%s\", \"zones\": {", f);
  for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
    {
      g_string_append_printf (out, "%s\"%s\": ", z ? ", " : "", cxr_severity_zone_name (z));
      print_number (out, s->score[z]);
    }
  g_string_append (out, "}, \"global\": ");
  print_number (out, s->global);
  /* each zone's score as the whole grade a reader writes (nearest, halves
   * up), and their sum: against the readers' grades the rounded scores
   * are nearer than the continuous ones (docs/severity.md) */
  g_string_append (out, ", \"grades\": {");
  long sum = 0;
  gboolean all = TRUE;
  for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
    {
      g_string_append_printf (out, "%s\"%s\": ", z ? ", " : "", cxr_severity_zone_name (z));
      if (isfinite (s->score[z]))
        {
          long g = lround (s->score[z]);
          sum += g;
          g_string_append_printf (out, "%ld", g);
        }
      else
        {
          all = FALSE;
          g_string_append (out, "null");
        }
    }
  if (all)
    g_string_append_printf (out, "}, \"global_grade\": %ld", sum);
  else
    g_string_append (out, "}, \"global_grade\": null");
  g_string_append_printf (
      out, ", \"status\": \"%s\", \"reason\": ", cxr_severity_status_name (s->status));
  if (s->reason)
    g_string_append_printf (out, "\"%s\"", s->reason);
  else
    g_string_append (out, "null");
  g_string_append_printf (out, ", \"zone_method\": \"%s\", \"zone_rows\": {", s->method);
  for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
    g_string_append_printf (out, "%s\"%s\": [%d, %d]", z ? ", " : "", cxr_severity_zone_name (z),
                            s->y0[z], s->y1[z]);
  g_string_append_printf (out, "}, \"elapsed_ms\": %.3f, \"model\": ", s->elapsed_ms);
  if (head)
    g_string_append_printf (out, "\"%s\"", head);
  else
    g_string_append (out, "null");
  if (features)
    {
      g_string_append (out, ", \"features\": [");
      for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
        {
          g_string_append (out, z ? ", [" : "[");
          for (int i = 0; i < s->n_features; i++)
            g_string_append_printf (out, "%s%.6g", i ? ", " : "",
                                    s->features[(gsize) z * s->n_features + i]);
          g_string_append_c (out, ']');
        }
      g_string_append_c (out, ']');
    }
  g_string_append (out, "}\n");
}

static void
print_text (GString *out, const char *file, const CxrSeverity *s)
{
  g_string_append_printf (out, "%s:", file);
  for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
    g_string_append_printf (out, " %s %.1f", cxr_severity_zone_name (z), s->score[z]);
  g_string_append_printf (out, "  global %.1f  %s (zones: %s)%s%s\n", s->global,
                          cxr_severity_status_name (s->status), s->method, s->reason ? ": " : "",
                          s->reason ? s->reason : "");
}

int
cmd_severity (int argc, char **argv)
{
  g_autofree char *format = NULL, *voi = NULL, *model_path = NULL, *lung_path = NULL,
                  *head_path = NULL;
  gboolean features = FALSE;
  GOptionEntry entries[] = {
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, "text (default) or json", "FMT" },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
      "Classifier whose features the head reads (default: $CXRTRACK_MODEL, else cxr-default)",
      "FILE" },
    { "lung-model", 0, 0, G_OPTION_ARG_FILENAME, &lung_path,
      "Lung segmenter (default: $CXRTRACK_LUNG_MODEL, else cxr-lungs)", "FILE" },
    { "severity-model", 0, 0, G_OPTION_ARG_FILENAME, &head_path,
      "Zone-score head (default: $CXRTRACK_SEVERITY_MODEL, else cxr-severity)", "FILE" },
    { "features", 0, 0, G_OPTION_ARG_NONE, &features,
      "JSON with each zone's features (what a head is fitted on); no head needed", NULL },
    CLI_VOI_ENTRY (voi),
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("FILM... - the Brixia score of frontal films (PNG, JPEG or DICOM)");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (
      ctx, "severity",
      "Zones A, B, C: upper, middle, lower zone of the patient's right lung (image left);\n"
      "D, E, F: of the left lung. Each 0 (clear) to 3 (alveolar predominance), global 0-18.\n"
      "Status 'implausible': the zones could not be drawn from the lung fields.\n"
      "A measure to support a radiologist's read, not a diagnosis (models/SEVERITY_CARD.md).\n");
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (argc < 2)
    return cli_usage_error (ctx, "severity needs at least one FILM");
  gboolean json = features || (format && g_str_equal (format, "json"));
  if (format && !g_str_equal (format, "json") && !g_str_equal (format, "text"))
    return cli_usage_error (ctx, "unknown --format '%s' (text or json)", format);
  if (features && format && !g_str_equal (format, "json"))
    return cli_usage_error (ctx, "--features prints JSON");
  CxrImageLimits lim;
  if (!cli_limits_voi (voi, &lim))
    return cli_usage_error (ctx, "--voi wants first, none or auto, got '%s'", voi);
  int rc = CXR_EXIT_OK;
  CxrModel *cls = NULL;
  CxrLungModel *lm = NULL;
  if (!cli_load_models (ctx, "severity", model_path, FALSE, lung_path, FALSE, &cls, &lm, &rc))
    return rc;
  g_autoptr (CxrModel) classifier = cls;
  g_autoptr (CxrLungModel) lungs_model = lm;
  if (classifier == NULL || lungs_model == NULL)
    {
      fprintf (stderr, "cxrtrack: severity needs the classifier and the lung segmenter\n");
      return CXR_EXIT_FAILURE;
    }
  g_autoptr (CxrSeverityModel) head = NULL;
  if (head_path == NULL && !features && (head_path = cli_default_severity_model ()) == NULL)
    {
      fprintf (stderr, "cxrtrack: the zone-score head (cxr-severity.safetensors) was not found;"
                       " name one with --severity-model FILE or $CXRTRACK_SEVERITY_MODEL\n");
      return CXR_EXIT_FAILURE;
    }
  if (head_path)
    {
      if ((head = cxr_severity_model_load (head_path, &error)) == NULL
          || !cxr_severity_model_check (head, classifier, &error))
        return cli_fail (error);
    }
  g_autoptr (GString) out = g_string_new (NULL);
  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GError) err = NULL;
      g_autoptr (CxrImage) film = cxr_image_load (argv[i], &lim, NULL, &err);
      g_autoptr (CxrLungFields) l = film ? cxr_lungs_segment (lungs_model, film, &err) : NULL;
      g_autoptr (CxrPrediction) p = l ? cxr_model_predict (classifier, film) : NULL;
      g_autoptr (CxrSeverity) s = p ? cxr_severity_measure (head, film, l, p, &err) : NULL;
      if (s == NULL)
        {
          fprintf (stderr, "cxrtrack: %s\n", err ? err->message : argv[i]);
          rc = CXR_EXIT_FAILURE;
          continue;
        }
      g_string_truncate (out, 0);
      if (json)
        print_json (out, argv[i], s, head ? cxr_severity_model_name (head) : NULL, features);
      else
        print_text (out, argv[i], s);
      fputs (out->str, stdout);
    }
  return rc;
}
