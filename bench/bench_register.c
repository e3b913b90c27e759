/* SPDX-License-Identifier: MIT
 *
 * Times cxr_register_pair in one warm process. Reads lines "FIXED MOVING
 * [FIXED_ASPECT MOVING_ASPECT]" (pixel height over width in the patient,
 * default 1) from a file, decodes every film first (not timed), registers one pair to
 * make the FFTW plans, then times each pair and prints
 * "ms dx_px dy_px angle_deg scale confidence status ncc_before ncc_after
 * asymmetry_px reason" per line (reason: the rest of the line, "-" if none). With
 * REPEATS > 1 each pair is registered that many times and the fastest time
 * is printed (for comparing code changes on a machine whose speed drifts).
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
  g_autofree char *text = NULL;
  if (!g_file_get_contents (argv[1], &text, NULL, NULL))
    return 1;
  g_auto (GStrv) lines = g_strsplit (g_strstrip (text), "\n", -1);
  guint n = g_strv_length (lines);
  CxrImage **f = g_new0 (CxrImage *, n), **m = g_new0 (CxrImage *, n);
  CxrRegisterOptions *opt = g_new (CxrRegisterOptions, n);
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
          opt[i].fixed_aspect = g_ascii_strtod (p[2], &e1);
          opt[i].moving_aspect = p[3] ? g_ascii_strtod (p[3], &e2) : 0;
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
    }
  CxrRegistration r;
  cxr_register_pair (f[0], m[0], NULL, &r, NULL); /* plans */
  int repeats = argc > 2 ? MAX (1, atoi (argv[2])) : 1;
  for (guint i = 0; i < n; i++)
    {
      double ms = INFINITY;
      for (int k = 0; k < repeats; k++)
        {
          g_autoptr (GError) err = NULL;
          gint64 t0 = g_get_monotonic_time ();
          if (!cxr_register_pair (f[i], m[i], &opt[i], &r, &err))
            {
              fprintf (stderr, "line %u: %s\n", i + 1, err->message);
              return 1;
            }
          ms = MIN (ms, (g_get_monotonic_time () - t0) / 1000.0);
        }
      printf ("%.3f %.5f %.5f %.6f %.7f %.4f %s %.4f %.4f %.3f %s\n", ms, r.dx_px, r.dy_px,
              r.angle_deg, r.scale, r.confidence, cxr_register_status_name (r.status), r.ncc_before,
              r.ncc_after, r.asymmetry_px, r.reason ? r.reason : "-");
    }
  for (guint i = 0; i < n; i++)
    {
      cxr_image_free (f[i]);
      cxr_image_free (m[i]);
    }
  g_free (f);
  g_free (m);
  g_free (opt);
  return 0;
}
