/* SPDX-License-Identifier: MIT
 * Test helper: prints "width height mean std" of a PNG's luminance (0..255),
 * so a script can tell a blank screenshot from a page. */
#include <math.h>
#include <stdio.h>

#include "cxr/cxr.h"

int
main (int argc, char **argv)
{
  if (argc != 2)
    return 2;
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrImage) im = cxr_image_load (argv[1], NULL, NULL, &err);
  if (im == NULL)
    {
      fprintf (stderr, "%s\n", err->message);
      return 1;
    }
  double s = 0, s2 = 0;
  gsize n = (gsize) im->width * im->height;
  for (gsize i = 0; i < n; i++)
    {
      s += im->data[i] * 255.0;
      s2 += im->data[i] * 255.0 * im->data[i] * 255.0;
    }
  double m = s / n;
  printf ("%d %d %.2f %.2f\n", im->width, im->height, m, sqrt (MAX (0, s2 / n - m * m)));
  return 0;
}
