/* SPDX-License-Identifier: MIT
 *
 * Registers and compares pairs in one warm process. Reads lines
 * "FIXED MOVING SPACING_MM" and prints per pair
 * "register_ms diff_ms status change_score change_energy changed_area_mm2 peak_x peak_y
 * mask_kind trend_score fixed_ctr moving_ctr" (the cardiothoracic ratios of both
 * films' lung fields, nan without them), then for each lung zone
 * (cxr_diff_region_name order) "mean_d zone_score area_px".
 * Usage: bench_diff LIST [OUTDIR]
 * $CXR_BENCH_LUNGS=MODEL: both films' lung fields found (not timed) and
 * used as analyze uses them (registration weight, the maps' region);
 * $CXR_BENCH_REGION=whole_lung (the default) or lungs: the maps over the
 * whole lung (cxr_lungs_cavity) or the fields alone,
 * $CXR_BENCH_EDGE_SHIFT=MM the whole lung's edge weight;
 * $CXR_BENCH_MAP_DEFORM=1: the maps through the deformable field too
 * (analyze --map-deform); $CXR_BENCH_MAP_REFINE=N with it: the field's
 * intensity refinement, up to N steps (register --refine).
 * With OUTDIR, each pair's signed map (8-bit PNG) is written there, as
 * analyze writes it, and the time includes writing it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cxr/cxr.h"

int
main (int argc, char **argv)
{
  if (argc < 2)
    return 2;
  cxr_tune_allocator (); /* as the cxrtrack CLI does */
  cxr_tune_threads ();   /* OpenBLAS on one thread, its idle pool stopped */
  g_autofree char *text = NULL;
  if (!g_file_get_contents (argv[1], &text, NULL, NULL))
    return 1;
  g_auto (GStrv) lines = g_strsplit (g_strstrip (text), "\n", -1);
  CxrDiffOptions dopt;
  cxr_diff_options_init (&dopt);
  if (g_strcmp0 (g_getenv ("CXR_BENCH_REGION"), "whole_lung") == 0)
    dopt.region = CXR_DIFF_REGION_WHOLE_LUNG;
  else if (g_strcmp0 (g_getenv ("CXR_BENCH_REGION"), "lungs") == 0)
    dopt.region = CXR_DIFF_REGION_LUNG_FIELDS;
  if (g_getenv ("CXR_BENCH_EDGE_SHIFT"))
    dopt.edge_shift_mm = g_ascii_strtod (g_getenv ("CXR_BENCH_EDGE_SHIFT"), NULL);
  g_autoptr (CxrLungModel) lm = NULL;
  if (g_getenv ("CXR_BENCH_LUNGS"))
    {
      g_autoptr (GError) err = NULL;
      if ((lm = cxr_lung_model_load (g_getenv ("CXR_BENCH_LUNGS"), &err)) == NULL)
        {
          fprintf (stderr, "%s\n", err->message);
          return 1;
        }
    }
  const char *outdir = argc > 2 ? argv[2] : NULL;
  int k = 0;
  for (char **l = lines; *l; l++, k++)
    {
      g_autofree char *png = outdir ? g_strdup_printf ("%s/pair%d.map.png", outdir, k) : NULL;
      g_auto (GStrv) p = g_strsplit (*l, " ", 3);
      g_autoptr (GError) err = NULL;
      g_autoptr (CxrImage) f = cxr_image_load (p[0], NULL, NULL, &err);
      g_autoptr (CxrImage) m = f ? cxr_image_load (p[1], NULL, NULL, &err) : NULL;
      if (m == NULL)
        {
          fprintf (stderr, "%s\n", err->message);
          return 1;
        }
      /* analyze's maps follow the global transform (pipeline.h: map_deform) */
      CxrRegisterOptions ro;
      cxr_register_options_init (&ro);
      gboolean map_deform = g_strcmp0 (g_getenv ("CXR_BENCH_MAP_DEFORM"), "1") == 0;
      ro.no_deform = !map_deform;
      if (g_getenv ("CXR_BENCH_MAP_REFINE"))
        ro.deform_refine_steps = atoi (g_getenv ("CXR_BENCH_MAP_REFINE"));
      g_autoptr (CxrLungFields) fl = lm ? cxr_lungs_segment (lm, f, NULL) : NULL;
      g_autoptr (CxrLungFields) ml = lm ? cxr_lungs_segment (lm, m, NULL) : NULL;
      CxrRegisterInputs rin = { 0 };
      rin.fixed_lungs = fl;
      rin.moving_lungs = ml;
      CxrDiffInputs din = { 0 };
      din.fixed_lungs = fl;
      din.moving_lungs = ml;
      CxrRegistration r;
      cxr_register_pair (f, m, &rin, &ro, &r, NULL);
      CxrDiff d;
      if (!cxr_diff_pair (f, m, &r, g_ascii_strtod (p[2], NULL), &din, &dopt, &d, &err))
        {
          printf ("%.2f nan %s nan nan nan nan nan none nan nan nan", r.elapsed_ms,
                  cxr_register_status_name (r.status));
          for (int z = 0; z < 3 * CXR_DIFF_N_REGIONS; z++)
            printf (" nan");
          printf ("\n");
          continue;
        }
      gint64 t0 = g_get_monotonic_time ();
      if (png && isnan (cxr_diff_write_map (&d, png, &err)))
        {
          fprintf (stderr, "%s\n", err->message);
          return 1;
        }
      double diff_ms = d.elapsed_ms + (g_get_monotonic_time () - t0) / 1000.0;
      printf ("%.2f %.2f %s %.6g %.6g %.2f %.1f %.1f %s %.6g %.4f %.4f", r.elapsed_ms, diff_ms,
              cxr_register_status_name (r.status), d.change_score, d.change_energy,
              d.changed_area_mm2, d.peak_x_px, d.peak_y_px, d.mask_kind, d.trend_score,
              fl ? fl->cardiothoracic_ratio : NAN, ml ? ml->cardiothoracic_ratio : NAN);
      /* each lung zone's mean signed change, change score and area */
      for (int z = 0; z < CXR_DIFF_N_REGIONS; z++)
        printf (" %.6f %.4f %.0f", d.region_area_px[z] > 0 ? d.region_mean_d[z] : NAN,
                d.region_score[z], d.region_area_px[z]);
      printf ("\n");
      cxr_diff_clear (&d);
    }
  return 0;
}
