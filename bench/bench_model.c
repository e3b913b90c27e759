/* SPDX-License-Identifier: MIT
 *
 * Inference speed of the C runtime: loads a model, makes N random inputs of
 * its size, runs one warm-up forward, then times N forwards.
 *   bench_model MODEL N THREADS MODE
 * MODE "gemm": one image at a time, OpenBLAS using THREADS threads;
 * MODE "images": THREADS images at a time, OpenBLAS single-threaded.
 * Prints "images/s peak_rss_mb" (VmHWM of this process).
 */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "cxr/cxr.h"

typedef struct {
  const CxrModel *m;
  float *x;
  int n;
} Work;

static gpointer
run (gpointer data)
{
  Work *w = data;
  for (int i = 0; i < w->n; i++)
    cxr_prediction_free (cxr_model_forward (w->m, w->x));
  return NULL;
}

int
main (int argc, char **argv)
{
  if (argc != 5)
    {
      fprintf (stderr, "usage: bench_model MODEL N THREADS gemm|images\n");
      return 2;
    }
  cxr_tune_allocator (); /* as the cxrtrack CLI does */
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrModel) m = cxr_model_load (argv[1], &err);
  if (m == NULL)
    {
      fprintf (stderr, "%s\n", err->message);
      return 1;
    }
  int n = atoi (argv[2]), threads = atoi (argv[3]);
  gboolean across = g_str_equal (argv[4], "images");
  openblas_set_num_threads (across ? 1 : threads);
  gsize sz
      = (gsize) cxr_model_input_channels (m) * cxr_model_input_size (m) * cxr_model_input_size (m);
  float *x = g_new (float, sz);
  GRand *r = g_rand_new_with_seed (1);
  for (gsize i = 0; i < sz; i++)
    x[i] = (float) g_rand_double_range (r, -2, 2);
  g_rand_free (r);
  cxr_prediction_free (cxr_model_forward (m, x));
  gint64 t0 = g_get_monotonic_time ();
  if (across)
    {
      GThread *th[16];
      Work w[16];
      for (int t = 0; t < threads; t++)
        {
          w[t] = (Work){ m, x, n / threads };
          th[t] = g_thread_new ("bench", run, &w[t]);
        }
      for (int t = 0; t < threads; t++)
        g_thread_join (th[t]);
      n = (n / threads) * threads;
    }
  else
    {
      Work w = { m, x, n };
      run (&w);
    }
  double s = (g_get_monotonic_time () - t0) / 1e6;
  /* VmHWM, not getrusage: a child's ru_maxrss starts from its parent's */
  double hwm_kb = 0;
  g_autofree char *status = NULL;
  if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    {
      const char *l = strstr (status, "VmHWM:");
      if (l)
        hwm_kb = g_ascii_strtod (l + 6, NULL);
    }
  printf ("%.2f %.0f\n", n / s, hwm_kb / 1024.0);
  g_free (x);
  return 0;
}
