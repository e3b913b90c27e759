/* SPDX-License-Identifier: MIT
 *
 * Using a registration: mapping points of FIXED to MOVING (through the
 * films' physical frames when their pixels are not square, register.h)
 * and warping MOVING into FIXED's frame with Keys' bicubic (1981).
 */
#include <math.h>

#include "register-private.h"

/**
 * cxr_register_offset:
 * Maps a point of FIXED, (x, y) px from its centre, to MOVING, px from
 * its centre: through the films' physical frames when their pixels are
 * not square (fixed_aspect, moving_aspect; 0 counts as 1).
 */
void
cxr_register_offset (const CxrRegistration *r, double x, double y, double *mx, double *my)
{
  double af = r->fixed_aspect > 0 ? r->fixed_aspect : 1.0;
  double am = r->moving_aspect > 0 ? r->moving_aspect : 1.0;
  double th = r->angle_deg * G_PI / 180;
  double py = y * af;
  *mx = r->scale * (cos (th) * x - sin (th) * py) + r->dx_px;
  *my = (r->scale * (sin (th) * x + cos (th) * py)) / am + r->dy_px;
}

/**
 * cxr_register_point:
 * Maps film coordinates (x, y) of FIXED to MOVING: the deformable field
 * (if any), then the global transform. cxr_register_offset is the
 * global transform alone.
 */
void
cxr_register_point (const CxrRegistration *r, int fw, int fh, int mw, int mh, double x, double y,
                    double *mx, double *my)
{
  double ux, uy;
  cxr_deform_field_at (&r->field, fw, fh, x, y, &ux, &uy);
  cxr_register_offset (r, x + ux - (fw - 1) / 2.0, y + uy - (fh - 1) / 2.0, mx, my);
  *mx += (mw - 1) / 2.0;
  *my += (mh - 1) / 2.0;
}

/* The four weights of Keys' cubic (1981, a = -0.5) for taps -1, 0, 1, 2
 * and a sample at fraction f in [0, 1) past tap 0: the kernel at distances
 * 1 + f, f, 1 - f and 2 - f, each on its own piece, so without branches. */
static inline void
keys4 (double f, double w[4])
{
  double t = 1 + f, u = 1 - f, v = 2 - f;
  w[0] = ((-0.5 * t + 2.5) * t - 4) * t + 2;
  w[1] = (1.5 * f - 2.5) * f * f + 1;
  w[2] = (1.5 * u - 2.5) * u * u + 1;
  w[3] = ((-0.5 * v + 2.5) * v - 4) * v + 2;
}

/**
 * cxr_register_warp:
 * Resamples @moving into the frame of a width x height FIXED film with
 * bicubic (Keys) interpolation, through the deformable field when the
 * registration has one; points that fall outside MOVING are 0.
 *
 * Returns: (transfer full): the warped film.
 */
CxrImage *
cxr_register_warp (const CxrImage *moving, const CxrRegistration *r, int width, int height)
{
  CxrImage *out = cxr_image_new (width, height);
  int mw = moving->width, mh = moving->height;
  /* The global map is affine in pixel coordinates: its origin and steps,
   * once; the field moves each point of FIXED before it. */
  CxrRegistration g = *r;
  g.field.nx = g.field.ny = 0;
  double ox, oy, ax, ay, bx, by;
  cxr_register_point (&g, width, height, mw, mh, 0, 0, &ox, &oy);
  cxr_register_point (&g, width, height, mw, mh, 1, 0, &ax, &ay);
  cxr_register_point (&g, width, height, mw, mh, 0, 1, &bx, &by);
  ax -= ox, ay -= oy, bx -= ox, by -= oy;
  gboolean deform = r->field.nx >= 4 && r->field.ny >= 4;
  /* the field at every pixel, sampled once (its column weights are the
   * same on every row) */
  float *ux = NULL, *uy = NULL;
  if (deform)
    {
      double *cols = g_new (double, width), *rows = g_new (double, height);
      for (int x = 0; x < width; x++)
        cols[x] = x;
      for (int y = 0; y < height; y++)
        rows[y] = y;
      ux = g_new (float, (gsize) width * height);
      uy = g_new (float, (gsize) width * height);
      cxr_deform_field_sample (&r->field, width, height, cols, width, rows, height, ux, uy);
      g_free (cols);
      g_free (rows);
    }
  for (int y = 0; y < height; y++)
    {
      const float *rux = ux ? ux + (gsize) y * width : NULL,
                  *ruy = uy ? uy + (gsize) y * width : NULL;
      float *o = out->data + (gsize) y * width;
      for (int x = 0; x < width; x++)
        {
          double px = x + (rux ? rux[x] : 0.f), py = y + (ruy ? ruy[x] : 0.f);
          double sx = ox + ax * px + bx * py, sy = oy + ay * px + by * py;
          if (!(sx >= -0.5 && sy >= -0.5 && sx <= mw - 0.5 && sy <= mh - 0.5))
            continue;
          /* floor, exactly, without a call into libm (sx, sy >= -0.5) */
          int x0 = (int) sx, y0 = (int) sy;
          x0 -= sx < x0;
          y0 -= sy < y0;
          double wx[4], wy[4];
          keys4 (sx - x0, wx);
          keys4 (sy - y0, wy);
          double acc = 0;
          if (x0 >= 1 && x0 + 2 < mw && y0 >= 1 && y0 + 2 < mh)
            {
              /* inside: the taps need no clamping */
              const float *row = moving->data + (gsize) (y0 - 1) * mw + x0 - 1;
              for (int j = 0; j < 4; j++, row += mw)
                acc += wy[j] * (wx[0] * row[0] + wx[1] * row[1] + wx[2] * row[2] + wx[3] * row[3]);
            }
          else
            {
              int xs[4];
              for (int i = 0; i < 4; i++)
                xs[i] = CLAMP (x0 + i - 1, 0, mw - 1);
              for (int j = 0; j < 4; j++)
                {
                  const float *row = moving->data + (gsize) CLAMP (y0 + j - 1, 0, mh - 1) * mw;
                  acc += wy[j]
                         * (wx[0] * row[xs[0]] + wx[1] * row[xs[1]] + wx[2] * row[xs[2]]
                            + wx[3] * row[xs[3]]);
                }
            }
          o[x] = (float) acc;
        }
    }
  g_free (ux);
  g_free (uy);
  return out;
}
