/* SPDX-License-Identifier: MIT
 *
 * cxrtrack lungs FILM --out MASK.png: the lung fields of one film, as an
 * 8-bit mask of the film's size (255 lung, 0 elsewhere) and their right
 * and left areas, share of the film, quality and status.
 */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "cxr/cxr.h"

int
cmd_lungs (int argc, char **argv)
{
  g_autofree char *out = NULL, *format = NULL, *model_path = NULL, *voi = NULL;
  GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Write the mask (PNG, the film's size)", "PNG" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, "text (default) or json", "FMT" },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
      "Lung segmenter (default: $CXRTRACK_LUNG_MODEL, else cxr-lungs)", "FILE" },
    CLI_VOI_ENTRY (voi),
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("FILM - find the lung fields (PNG, JPEG or DICOM)");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (ctx, "lungs", NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (argc != 2)
    return cli_usage_error (ctx, "lungs needs one FILM");
  gboolean json = format && g_str_equal (format, "json");
  if (format && !json && !g_str_equal (format, "text"))
    return cli_usage_error (ctx, "unknown --format '%s' (text or json)", format);
  if (model_path == NULL && (model_path = cli_default_lung_model ()) == NULL)
    {
      fprintf (stderr, "cxrtrack: the lung segmenter (cxr-lungs.safetensors) was not found; name"
                       " one with --model FILE or $CXRTRACK_LUNG_MODEL\n");
      return CXR_EXIT_FAILURE;
    }
  g_autoptr (CxrLungModel) model = cxr_lung_model_load (model_path, &error);
  if (model == NULL)
    return cli_fail (error);
  CxrImageLimits lim;
  if (!cli_limits_voi (voi, &lim))
    return cli_usage_error (ctx, "--voi wants first, none or auto, got '%s'", voi);
  g_autoptr (CxrImage) film = cxr_image_load (argv[1], &lim, NULL, &error);
  if (film == NULL)
    return cli_fail (error);
  g_autoptr (CxrLungFields) l = cxr_lungs_segment (model, film, &error);
  if (l == NULL)
    return cli_fail (error);
  if (out)
    {
      gsize n = (gsize) l->width * l->height;
      g_autofree guint8 *px = g_new (guint8, n);
      for (gsize i = 0; i < n; i++)
        px[i] = l->mask[i] ? 255 : 0;
      if (!cxr_image_save_png8 (px, l->width, l->height, 1, out, 6, &error))
        return cli_fail (error);
    }
  const char *st = cxr_lungs_status_name (l->status);
  char ctr[32] = "null";
  if (!isnan (l->cardiothoracic_ratio))
    g_snprintf (ctr, sizeof ctr, "%.4f", l->cardiothoracic_ratio);
  if (json)
    printf ("{\"right_area_px\": %.0f, \"left_area_px\": %.0f, \"lung_fraction\": %.4f, "
            "\"quality\": %.4f, \"status\": \"%s\", \"airless_side\": %s%s%s, "
            "\"cardiothoracic_ratio\": %s}\n",
            l->right_area_px, l->left_area_px, l->lung_fraction, l->quality, st,
            l->airless_side ? "\"" : "", l->airless_side ? l->airless_side : "null",
            l->airless_side ? "\"" : "", ctr);
  else
    printf (
        "right_area_px %.0f\nleft_area_px %.0f\nlung_fraction %.4f\nquality %.4f\nstatus %s%s%s%s"
        "\nbbox %d %d %d %d\ncardiothoracic_ratio %s\nelapsed_ms %.2f\n",
        l->right_area_px, l->left_area_px, l->lung_fraction, l->quality, st, l->reason ? " (" : "",
        l->reason ? l->reason : "", l->reason ? ")" : "", l->bbox_x0, l->bbox_y0, l->bbox_x1,
        l->bbox_y1, ctr, l->elapsed_ms);
  return CXR_EXIT_OK;
}
