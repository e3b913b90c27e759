/* SPDX-License-Identifier: MIT
 *
 * cxrtrack register FIXED MOVING: one pair, printed as text or JSON, and
 * optionally the moving film warped into the fixed frame.
 */
#include <stdio.h>

#include "cli.h"
#include "cxr/cxr.h"

int
cmd_register (int argc, char **argv)
{
  g_autofree char *out = NULL, *format = NULL;
  double max_angle = 15, min_scale = 0.8, max_scale = 1.25, fixed_aspect = 1, moving_aspect = 1;
  gboolean fixed_scale = FALSE;
  int coarse = 256, fine = 0;
  GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Write MOVING warped into FIXED's frame", "PNG" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, "text (default) or json", "FMT" },
    { "max-angle", 0, 0, G_OPTION_ARG_DOUBLE, &max_angle, "Rotation search limit, degrees (15)",
      "DEG" },
    { "min-scale", 0, 0, G_OPTION_ARG_DOUBLE, &min_scale, "Smallest scale searched (0.8)", "S" },
    { "max-scale", 0, 0, G_OPTION_ARG_DOUBLE, &max_scale, "Largest scale searched (1.25)", "S" },
    { "fixed-scale", 0, 0, G_OPTION_ARG_NONE, &fixed_scale, "Estimate rotation and shift only",
      NULL },
    { "fixed-aspect", 0, 0, G_OPTION_ARG_DOUBLE, &fixed_aspect,
      "FIXED's pixel height over width in the patient (1)", "A" },
    { "moving-aspect", 0, 0, G_OPTION_ARG_DOUBLE, &moving_aspect,
      "MOVING's pixel height over width in the patient (1)", "A" },
    { "coarse", 0, 0, G_OPTION_ARG_INT, &coarse, "Top grid, px; searched at 1/2 and 1/4 (256)",
      "PX" },
    { "fine", 0, 0, G_OPTION_ARG_INT, &fine, "Further refinement grid, px (0 = none)", "PX" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("FIXED.png MOVING.png - align two films");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (argc != 3)
    return cli_usage_error (ctx, "register needs FIXED and MOVING");
  gboolean json = format && g_str_equal (format, "json");
  if (format && !json && !g_str_equal (format, "text"))
    return cli_usage_error (ctx, "unknown --format '%s' (text or json)", format);

  g_autoptr (CxrImage) f = cxr_image_load (argv[1], NULL, NULL, &error);
  if (f == NULL)
    return cli_fail (error);
  g_autoptr (CxrImage) m = cxr_image_load (argv[2], NULL, NULL, &error);
  if (m == NULL)
    return cli_fail (error);
  CxrRegisterOptions opt;
  cxr_register_options_init (&opt);
  opt.max_angle_deg = max_angle;
  opt.min_scale = min_scale;
  opt.max_scale = max_scale;
  opt.fixed_scale = fixed_scale;
  opt.coarse_size = coarse;
  opt.fine_size = fine;
  opt.fixed_aspect = fixed_aspect;
  opt.moving_aspect = moving_aspect;
  CxrRegistration r;
  if (!cxr_register_pair (f, m, &opt, &r, &error))
    return cli_fail (error);
  const char *st = cxr_register_status_name (r.status);
  if (json)
    printf ("{\"dx_px\": %.4f, \"dy_px\": %.4f, \"angle_deg\": %.5f, \"scale\": %.6f, "
            "\"confidence\": %.4f, \"status\": \"%s\"}\n",
            r.dx_px, r.dy_px, r.angle_deg, r.scale, r.confidence, st);
  else
    printf ("dx_px %.4f\ndy_px %.4f\nangle_deg %.5f\nscale %.6f\nconfidence %.4f\nstatus %s%s%s%s\n"
            "ncc_before %.4f\nncc_after %.4f\npsr %.1f\nasymmetry_px %.2f\nelapsed_ms %.2f\n",
            r.dx_px, r.dy_px, r.angle_deg, r.scale, r.confidence, st, r.reason ? " (" : "",
            r.reason ? r.reason : "", r.reason ? ")" : "", r.ncc_before, r.ncc_after, r.psr,
            r.asymmetry_px, r.elapsed_ms);
  if (out)
    {
      g_autoptr (CxrImage) w = cxr_register_warp (m, &r, f->width, f->height);
      if (!cxr_image_save_png (w, out, 1, &error))
        return cli_fail (error);
    }
  return r.status == CXR_REGISTER_FAILED ? CXR_EXIT_FAILURE : CXR_EXIT_OK;
}
