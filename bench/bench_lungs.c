/* SPDX-License-Identifier: MIT
 *
 * The lung segmenter in one warm process, one thread: for each film given,
 * decode it (not timed), then segment it REPEATS times and keep the fastest
 * (the network at its 256-px input, and the post-processing at the film's
 * own size); and optionally write each mask to OUTDIR/NAME (255 lung).
 * Prints "ms_total ms_network status quality right_px left_px name" per
 * film.
 *   bench_lungs MODEL REPEATS [--out OUTDIR] FILM...
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "cxr/cxr.h"

int
main (int argc, char **argv)
{
  if (argc < 4)
    {
      fprintf (stderr, "usage: bench_lungs MODEL REPEATS [--out DIR] FILM...\n");
      return 2;
    }
  cxr_tune_allocator (); /* as the cxrtrack CLI does */
  cxr_tune_threads ();   /* OpenBLAS on one thread, its idle pool stopped */
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrLungModel) m = cxr_lung_model_load (argv[1], &err);
  if (m == NULL)
    {
      fprintf (stderr, "%s\n", err->message);
      return 1;
    }
  int repeats = MAX (1, atoi (argv[2])), first = 3;
  const char *out = NULL;
  if (argc > 4 && g_str_equal (argv[3], "--out"))
    {
      out = argv[4];
      first = 5;
    }
  for (int a = first; a < argc; a++)
    {
      g_autoptr (CxrImage) im = cxr_image_load (argv[a], NULL, NULL, &err);
      if (im == NULL)
        {
          fprintf (stderr, "%s\n", err->message);
          return 1;
        }
      double best = 1e9, best_net = 1e9;
      CxrLungFields *keep = NULL;
      for (int r = 0; r < repeats; r++)
        {
          gint64 t0 = g_get_monotonic_time ();
          g_autofree float *x = cxr_lung_model_preprocess (m, im);
          g_free (cxr_lung_model_forward (m, x));
          best_net = MIN (best_net, (g_get_monotonic_time () - t0) / 1e3);
          CxrLungFields *l = cxr_lungs_segment (m, im, &err);
          best = MIN (best, l->elapsed_ms);
          cxr_lung_fields_free (keep);
          keep = l;
        }
      printf ("%.2f %.2f %s %.3f %.0f %.0f %s\n", best, best_net,
              cxr_lungs_status_name (keep->status), keep->quality, keep->right_area_px,
              keep->left_area_px, argv[a]);
      if (out)
        {
          gsize n = (gsize) keep->width * keep->height;
          g_autofree guint8 *px = g_new (guint8, n);
          for (gsize i = 0; i < n; i++)
            px[i] = keep->mask[i] ? 255 : 0;
          g_autofree char *base = g_path_get_basename (argv[a]);
          g_autofree char *p = g_build_filename (out, base, NULL);
          cxr_image_save_png8 (px, keep->width, keep->height, 1, p, 6, NULL);
        }
      cxr_lung_fields_free (keep);
    }
  return 0;
}
