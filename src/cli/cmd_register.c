/* SPDX-License-Identifier: MIT
 *
 * cxrtrack register FIXED MOVING: one pair, printed as text or JSON, and
 * optionally the moving film warped into the fixed frame. The films' lung
 * fields (the default segmenter) guide the deformable stage and give the
 * status its evidence; with --db the films are image indexes of a store,
 * which gives their files and pixel aspects as analyze uses them.
 */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "cxr/cxr.h"

int
cmd_register (int argc, char **argv)
{
  g_autofree char *out = NULL, *format = NULL, *db = NULL, *lung_model = NULL, *voi = NULL;
  gboolean no_lungs = FALSE, no_deform = FALSE, refine = FALSE;
  double max_angle = 15, min_scale = 0.8, max_scale = 1.25, fixed_aspect = 1, moving_aspect = 1;
  gboolean fixed_scale = FALSE;
  int coarse = 256, fine = 0;
  GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Write MOVING warped into FIXED's frame", "PNG" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, "text (default) or json", "FMT" },
    CLI_VOI_ENTRY (voi),
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
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db,
      "FIXED and MOVING are image indexes of this store (files and pixel aspects from it)", "DB" },
    { "lung-model", 0, 0, G_OPTION_ARG_FILENAME, &lung_model,
      "Lung segmenter (default: $CXRTRACK_LUNG_MODEL, else cxr-lungs)", "FILE" },
    { "no-lungs", 0, 0, G_OPTION_ARG_NONE, &no_lungs,
      "Without lung fields: the thorax window guides and judges", NULL },
    { "no-deform", 0, 0, G_OPTION_ARG_NONE, &no_deform, "The global (similarity) stage only",
      NULL },
    { "refine", 0, 0, G_OPTION_ARG_NONE, &refine,
      "After the deformable stage's blocks, up to 20 steps of the intensities' own pull inside"
      " the lungs, their outlines held: lines the lungs' ribs and vessels up better (about 16 ms)",
      NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("FIXED.png MOVING.png - align two films");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (ctx, "register", NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (argc != 3)
    return cli_usage_error (ctx, "register needs FIXED and MOVING");
  gboolean json = format && g_str_equal (format, "json");
  if (format && !json && !g_str_equal (format, "text"))
    return cli_usage_error (ctx, "unknown --format '%s' (text or json)", format);

  g_autofree char *fixed_path = g_strdup (argv[1]), *moving_path = g_strdup (argv[2]);
  if (db)
    {
      g_autoptr (CxrStore) store = cxr_store_open (db, CXR_STORE_READ_ONLY, &error);
      if (store == NULL)
        return cli_fail (error);
      g_clear_pointer (&fixed_path, g_free);
      g_clear_pointer (&moving_path, g_free);
      if (!cxr_store_find_film (store, argv[1], &fixed_path, &fixed_aspect, &error)
          || !cxr_store_find_film (store, argv[2], &moving_path, &moving_aspect, &error))
        return cli_fail (error);
    }
  CxrImageLimits lim;
  if (!cli_limits_voi (voi, &lim))
    return cli_usage_error (ctx, "--voi wants first, none or auto, got '%s'", voi);
  g_autoptr (CxrImage) f = cxr_image_load (fixed_path, &lim, NULL, &error);
  if (f == NULL)
    return cli_fail (error);
  g_autoptr (CxrImage) m = cxr_image_load (moving_path, &lim, NULL, &error);
  if (m == NULL)
    return cli_fail (error);
  g_autoptr (CxrLungModel) lm = NULL;
  g_autoptr (CxrLungFields) fl = NULL, ml = NULL;
  if (!no_lungs)
    {
      if (lung_model == NULL && (lung_model = cli_default_lung_model ()) == NULL)
        {
          fprintf (stderr, "cxrtrack: the lung segmenter (cxr-lungs.safetensors) was not found;"
                           " name one with --lung-model FILE, or use --no-lungs\n");
          return CXR_EXIT_FAILURE;
        }
      if ((lm = cxr_lung_model_load (lung_model, &error)) == NULL
          || (fl = cxr_lungs_segment (lm, f, &error)) == NULL
          || (ml = cxr_lungs_segment (lm, m, &error)) == NULL)
        return cli_fail (error);
      cxr_lungs_release_scratch (); /* its pages serve the registration */
    }
  CxrRegisterOptions opt;
  cxr_register_options_init (&opt);
  opt.max_angle_deg = max_angle;
  opt.min_scale = min_scale;
  opt.max_scale = max_scale;
  opt.fixed_scale = fixed_scale;
  opt.coarse_size = coarse;
  opt.fine_size = fine;
  opt.no_deform = no_deform;
  opt.deform_refine_steps = refine ? 20 : 0;
  CxrRegisterInputs in = { fixed_aspect, moving_aspect, fl, ml };
  CxrRegistration r;
  if (!cxr_register_pair (f, m, &in, &opt, &r, &error))
    return cli_fail (error);
  const char *st = cxr_register_status_name (r.status);
  /* NAN (no lung fields) is null in JSON, nan in text */
  char dice_b[32], dice_a[32];
  if (isnan (r.lung_dice_before))
    g_strlcpy (dice_b, json ? "null" : "nan", sizeof dice_b);
  else
    g_snprintf (dice_b, sizeof dice_b, "%.4f", r.lung_dice_before);
  if (isnan (r.lung_dice_after))
    g_strlcpy (dice_a, json ? "null" : "nan", sizeof dice_a);
  else
    g_snprintf (dice_a, sizeof dice_a, "%.4f", r.lung_dice_after);
  const char *reason = r.reason ? r.reason : "";
  if (json)
    {
      /* the reasons are fixed ASCII texts without quotes */
      g_autofree char *why = r.reason ? g_strdup_printf ("\"%s\"", r.reason) : g_strdup ("null");
      printf ("{\"dx_px\": %.4f, \"dy_px\": %.4f, \"angle_deg\": %.5f, \"scale\": %.6f, "
              "\"confidence\": %.4f, \"status\": \"%s\", \"reason\": %s, "
              "\"ncc_before\": %.4f, \"ncc_global\": %.4f, \"ncc_after\": %.4f, "
              "\"ncc_region\": \"%s\", \"lung_dice_before\": %s, \"lung_dice_after\": %s, "
              "\"deformable\": %s, \"rms_displacement_px\": %.3f, "
              "\"max_displacement_px\": %.3f, \"jacobian_min\": %.3f, \"jacobian_max\": %.3f, "
              "\"folds\": %d, \"global_confidence\": %.4f, \"elapsed_ms\": %.2f}\n",
              r.dx_px, r.dy_px, r.angle_deg, r.scale, r.confidence, st, why, r.ncc_before,
              r.ncc_global, r.ncc_after, r.ncc_region, dice_b, dice_a,
              r.deformable ? "true" : "false", r.rms_displacement_px, r.max_displacement_px,
              r.jacobian_min, r.jacobian_max, r.folds, r.global_confidence, r.elapsed_ms);
    }
  else
    printf ("dx_px %.4f\ndy_px %.4f\nangle_deg %.5f\nscale %.6f\nconfidence %.4f\nstatus %s%s%s%s\n"
            "ncc_before %.4f\nncc_global %.4f\nncc_after %.4f\nncc_region %s\n"
            "lung_dice_before %s\nlung_dice_after %s\ndeformable %s\n"
            "rms_displacement_px %.3f\nmax_displacement_px %.3f\njacobian_min %.3f\n"
            "jacobian_max %.3f\nfolds %d\n"
            "global_confidence %.4f\npsr %.1f\nasymmetry_px %.2f\nelapsed_ms %.2f\n",
            r.dx_px, r.dy_px, r.angle_deg, r.scale, r.confidence, st, r.reason ? " (" : "", reason,
            r.reason ? ")" : "", r.ncc_before, r.ncc_global, r.ncc_after, r.ncc_region, dice_b,
            dice_a, r.deformable ? "yes" : "no", r.rms_displacement_px, r.max_displacement_px,
            r.jacobian_min, r.jacobian_max, r.folds, r.global_confidence, r.psr, r.asymmetry_px,
            r.elapsed_ms);
  if (out)
    {
      g_autoptr (CxrImage) w = cxr_register_warp (m, &r, f->width, f->height);
      if (!cxr_image_save_png (w, out, 1, &error))
        return cli_fail (error);
    }
  return r.status == CXR_REGISTER_FAILED ? CXR_EXIT_FAILURE : CXR_EXIT_OK;
}
