/* SPDX-License-Identifier: MIT
 * Test helper: repose IN OUT DX DY ANGLE_DEG SCALE writes IN re-posed, so
 * that registering OUT to IN should report that transform (the convention
 * of cxr/register.h): OUT(c + s R p + d) = IN(c + p). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cxr/cxr.h"

int
main (int argc, char **argv)
{
  if (argc != 7)
    {
      fprintf (stderr, "usage: repose IN OUT DX DY ANGLE_DEG SCALE\n");
      return 2;
    }
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrImage) im = cxr_image_load (argv[1], NULL, NULL, &err);
  if (im == NULL)
    {
      fprintf (stderr, "%s\n", err->message);
      return 1;
    }
  double dx = atof (argv[3]), dy = atof (argv[4]), th = atof (argv[5]) * G_PI / 180;
  double s = atof (argv[6]);
  /* cxr_register_warp samples its input at T(p): warp by the inverse */
  CxrRegistration inv = { 0 };
  inv.scale = 1 / s;
  inv.angle_deg = -th * 180 / G_PI;
  inv.dx_px = -(cos (th) * dx + sin (th) * dy) / s;
  inv.dy_px = -(-sin (th) * dx + cos (th) * dy) / s;
  g_autoptr (CxrImage) out = cxr_register_warp (im, &inv, im->width, im->height);
  if (!cxr_image_save_png (out, argv[2], 1, &err))
    {
      fprintf (stderr, "%s\n", err->message);
      return 1;
    }
  return 0;
}
