/* SPDX-License-Identifier: MIT
 *
 * cxrtrack predict --model FILE FILM...: finding probabilities (and with
 * --embedding the embedding) of films, as CSV or JSON lines.
 */
#include <stdio.h>

#include "cli.h"
#include "cxr/cxr.h"

int
cmd_predict (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *format = NULL, *voi = NULL;
  gboolean embedding = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
      "Classifier weights (safetensors; default: $CXRTRACK_MODEL, else cxr-default)", "FILE" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, "csv (default) or json", "FMT" },
    { "embedding", 'e', 0, G_OPTION_ARG_NONE, &embedding, "Also print the embedding", NULL },
    CLI_VOI_ENTRY (voi),
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("FILM... - score films (PNG, JPEG or DICOM)");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (ctx, "predict", NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (model_path == NULL)
    model_path = cli_default_model ();
  if (model_path == NULL)
    return cli_usage_error (ctx, "predict: no --model, and the default model was not found");
  if (argc < 2)
    return cli_usage_error (ctx, "predict needs at least one film");
  gboolean json = format && g_str_equal (format, "json");
  if (format && !json && !g_str_equal (format, "csv"))
    return cli_usage_error (ctx, "unknown --format '%s' (csv or json)", format);
  CxrImageLimits lim;
  if (!cli_limits_voi (voi, &lim))
    return cli_usage_error (ctx, "--voi wants first, none or auto, got '%s'", voi);
  g_autoptr (CxrModel) m = cxr_model_load (model_path, &error);
  if (m == NULL)
    return cli_fail (error);
  int nc = cxr_model_n_classes (m);
  if (!json)
    {
      printf ("file");
      for (int c = 0; c < nc; c++)
        printf (",%s", cxr_model_class_name (m, c));
      if (embedding)
        for (int k = 0; k < cxr_model_embedding_dim (m); k++)
          printf (",e%d", k);
      printf ("\n");
    }
  int rc = CXR_EXIT_OK;
  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GError) err = NULL;
      g_autoptr (CxrImage) film = cxr_image_load (argv[i], &lim, NULL, &err);
      if (film == NULL)
        {
          fprintf (stderr, "cxrtrack: %s\n", err->message);
          rc = CXR_EXIT_FAILURE;
          continue;
        }
      g_autoptr (CxrPrediction) p = cxr_model_predict (m, film);
      g_autofree char *q = g_strescape (argv[i], NULL);
      if (json)
        {
          printf ("{\"file\": \"%s\", \"probability\": {", q);
          for (int c = 0; c < nc; c++)
            printf ("%s\"%s\": %.7f", c ? ", " : "", cxr_model_class_name (m, c),
                    p->probability[c]);
          printf ("}");
          if (embedding)
            {
              printf (", \"embedding\": [");
              for (int k = 0; k < p->dim; k++)
                printf ("%s%.7g", k ? ", " : "", p->embedding[k]);
              printf ("]");
            }
          printf ("}\n");
        }
      else
        {
          printf ("%s", argv[i]);
          for (int c = 0; c < nc; c++)
            printf (",%.7f", p->probability[c]);
          if (embedding)
            for (int k = 0; k < p->dim; k++)
              printf (",%.7g", p->embedding[k]);
          printf ("\n");
        }
    }
  return rc;
}
