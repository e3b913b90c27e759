/* SPDX-License-Identifier: MIT
 *
 * Times cxr_register_pair in one warm process. Reads lines "FIXED MOVING
 * [FIXED_ASPECT MOVING_ASPECT]" (pixel height over width in the patient,
 * default 1) from a file, decodes every film first (not timed), registers one pair to
 * make the FFTW plans, then times each pair and prints
 * "ms dx_px dy_px angle_deg scale confidence status ncc_before ncc_after
 * asymmetry_px ncc_global lung_dice_after deformable rms_displacement_px
 * folds reason" per line (reason: the rest of the line, "-" if none). With
 * REPEATS > 1 each pair is registered that many times and the fastest time
 * is printed (for comparing code changes on a machine whose speed drifts).
 * Environment: CXR_BENCH_LUNGS=MODEL finds every film's lung fields first
 * (not timed: a film's are found once, whatever the number of its pairs)
 * and registers with them; CXR_BENCH_NO_DEFORM=1 runs the global stage
 * only; CXR_BENCH_LAMBDA and CXR_BENCH_POINTS set the deformable stage's
 * deform_lambda and deform_points (tuning); CXR_BENCH_REFINE=N its
 * deform_refine_steps; CXR_BENCH_OUT=DIR writes each pair's MOVING warped into FIXED's
 * frame as DIR/LINE.png (1-based line number).
 * Usage: bench_register LIST [REPEATS]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cxr/cxr.h"

int
main (int argc, char **argv)
{
  if (argc < 2)
    {
      fprintf (stderr, "usage: bench_register LIST [REPEATS]\n");
      return 2;
    }
  /* as the cxrtrack CLI does (src/cli/main.c) */
  cxr_tune_allocator (); /* as the cxrtrack CLI does */
  cxr_tune_threads ();   /* OpenBLAS on one thread, its idle pool stopped */
  g_autofree char *text = NULL;
  if (!g_file_get_contents (argv[1], &text, NULL, NULL))
    return 1;
  g_auto (GStrv) lines = g_strsplit (g_strstrip (text), "\n", -1);
  guint n = g_strv_length (lines);
  CxrImage **f = g_new0 (CxrImage *, n), **m = g_new0 (CxrImage *, n);
  CxrRegisterOptions *opt = g_new (CxrRegisterOptions, n);
  CxrRegisterInputs *in = g_new0 (CxrRegisterInputs, n);
  CxrLungFields **fl = g_new0 (CxrLungFields *, n), **ml = g_new0 (CxrLungFields *, n);
  g_autoptr (CxrLungModel) lm = NULL;
  const char *lungs = g_getenv ("CXR_BENCH_LUNGS"), *outdir = g_getenv ("CXR_BENCH_OUT");
  if (lungs && *lungs)
    {
      g_autoptr (GError) err = NULL;
      if ((lm = cxr_lung_model_load (lungs, &err)) == NULL)
        {
          fprintf (stderr, "%s\n", err->message);
          return 1;
        }
    }
  for (guint i = 0; i < n; i++)
    {
      g_auto (GStrv) p = g_strsplit (lines[i], " ", 5);
      g_autoptr (GError) err = NULL;
      if (p[0] == NULL || p[1] == NULL)
        {
          fprintf (stderr, "line %u: want FIXED MOVING [FIXED_ASPECT MOVING_ASPECT]\n", i + 1);
          return 1;
        }
      cxr_register_options_init (&opt[i]);
      if (p[2])
        {
          char *e1 = NULL, *e2 = NULL;
          in[i].fixed_aspect = g_ascii_strtod (p[2], &e1);
          in[i].moving_aspect = p[3] ? g_ascii_strtod (p[3], &e2) : 0;
          if (e1 == p[2] || *e1 || e2 == NULL || e2 == p[3] || *e2 || p[4])
            {
              fprintf (stderr, "line %u: want FIXED MOVING [FIXED_ASPECT MOVING_ASPECT]\n", i + 1);
              return 1;
            }
        }
      f[i] = cxr_image_load (p[0], NULL, NULL, &err);
      m[i] = f[i] ? cxr_image_load (p[1], NULL, NULL, &err) : NULL;
      if (m[i] == NULL)
        {
          fprintf (stderr, "%s\n", err->message);
          return 1;
        }
      opt[i].no_deform = g_strcmp0 (g_getenv ("CXR_BENCH_NO_DEFORM"), "1") == 0;
      if (g_getenv ("CXR_BENCH_REFINE"))
        opt[i].deform_refine_steps = atoi (g_getenv ("CXR_BENCH_REFINE"));
      if (g_getenv ("CXR_BENCH_LAMBDA"))
        opt[i].deform_lambda = g_ascii_strtod (g_getenv ("CXR_BENCH_LAMBDA"), NULL);
      if (g_getenv ("CXR_BENCH_LUNG_WEIGHT"))
        opt[i].deform_lung_weight = g_ascii_strtod (g_getenv ("CXR_BENCH_LUNG_WEIGHT"), NULL);
      if (g_getenv ("CXR_BENCH_MIN_BLOCK"))
        opt[i].deform_min_block = atoi (g_getenv ("CXR_BENCH_MIN_BLOCK"));
      if (g_getenv ("CXR_BENCH_POINTS"))
        opt[i].deform_points = atoi (g_getenv ("CXR_BENCH_POINTS"));
      if (lm)
        {
          fl[i] = cxr_lungs_segment (lm, f[i], NULL);
          ml[i] = cxr_lungs_segment (lm, m[i], NULL);
          in[i].fixed_lungs = fl[i];
          in[i].moving_lungs = ml[i];
        }
    }
  CxrRegistration r;
  cxr_register_pair (f[0], m[0], NULL, NULL, &r, NULL); /* plans */
  int repeats = argc > 2 ? MAX (1, atoi (argv[2])) : 1;
  for (guint i = 0; i < n; i++)
    {
      double ms = INFINITY;
      for (int k = 0; k < repeats; k++)
        {
          g_autoptr (GError) err = NULL;
          gint64 t0 = g_get_monotonic_time ();
          if (!cxr_register_pair (f[i], m[i], &in[i], &opt[i], &r, &err))
            {
              fprintf (stderr, "line %u: %s\n", i + 1, err->message);
              return 1;
            }
          ms = MIN (ms, (g_get_monotonic_time () - t0) / 1000.0);
        }
      printf ("%.3f %.5f %.5f %.6f %.7f %.4f %s %.4f %.4f %.3f %.4f %.4f %d %.3f %d %s\n", ms,
              r.dx_px, r.dy_px, r.angle_deg, r.scale, r.confidence,
              cxr_register_status_name (r.status), r.ncc_before, r.ncc_after, r.asymmetry_px,
              r.ncc_global, r.lung_dice_after, r.deformable, r.rms_displacement_px, r.folds,
              r.reason ? r.reason : "-");
      if (outdir)
        {
          g_autoptr (GError) err = NULL;
          g_autofree char *name = g_strdup_printf ("%s/%u.png", outdir, i + 1);
          g_autoptr (CxrImage) w = cxr_register_warp (m[i], &r, f[i]->width, f[i]->height);
          if (!cxr_image_save_png (w, name, 1, &err))
            {
              fprintf (stderr, "%s\n", err->message);
              return 1;
            }
        }
    }
  for (guint i = 0; i < n; i++)
    {
      cxr_image_free (f[i]);
      cxr_image_free (m[i]);
      cxr_lung_fields_free (fl[i]);
      cxr_lung_fields_free (ml[i]);
    }
  g_free (fl);
  g_free (ml);
  g_free (f);
  g_free (m);
  g_free (opt);
  g_free (in);
  return 0;
}
