/* SPDX-License-Identifier: MIT
 *
 * PNG reading: every layout of tests/data/good/ must give exactly the
 * luminance of gray8.png (tools/make_test_pngs.py writes them from one
 * crop of a real NIH film); every file in tests/data/bad/ must be refused
 * with its own error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>
#include <png.h>

#include "cxr/cxr.h"

static char *
data_path (const char *rel)
{
  return g_build_filename (g_getenv ("CXR_TEST_DATA"), rel, NULL);
}

static CxrImage *
load_ok (const char *rel, CxrImageInfo *info)
{
  g_autofree char *p = data_path (rel);
  g_autoptr (GError) err = NULL;
  CxrImage *im = cxr_image_load (p, NULL, info, &err);
  if (err)
    fail_msg ("%s: %s", rel, err->message);
  assert_non_null (im);
  return im;
}

static void
test_variants_match_gray8 (void **state)
{
  CxrImageInfo info;
  g_autoptr (CxrImage) ref = load_ok ("good/gray8.png", &info);
  assert_int_equal (ref->width, 64);
  assert_int_equal (ref->height, 48);
  assert_string_equal (info.color_type, "gray");
  static const struct {
    const char *file;
    int depth;
    const char *ct;
    gboolean interlaced;
  } v[] = {
    { "good/gray16.png", 16, "gray", FALSE },
    { "good/rgb8.png", 8, "rgb", FALSE },
    { "good/rgba8.png", 8, "rgba", FALSE },
    { "good/gray_alpha8.png", 8, "gray+alpha", FALSE },
    { "good/palette8.png", 8, "palette", FALSE },
    { "good/interlaced8.png", 8, "gray", TRUE },
    { "good/rgb16_interlaced.png", 16, "rgb", TRUE },
  };
  for (guint k = 0; k < G_N_ELEMENTS (v); k++)
    {
      g_autoptr (CxrImage) im = load_ok (v[k].file, &info);
      assert_int_equal (info.bit_depth, v[k].depth);
      assert_string_equal (info.color_type, v[k].ct);
      assert_int_equal (info.interlaced, v[k].interlaced);
      assert_int_equal (im->width, ref->width);
      assert_int_equal (im->height, ref->height);
      double maxd = 0;
      for (int i = 0; i < im->width * im->height; i++)
        maxd = fmax (maxd, fabs (im->data[i] - ref->data[i]));
      if (maxd > 1e-6)
        fail_msg ("%s differs from gray8.png by %g", v[k].file, maxd);
    }
  /* 1-bit: the generator thresholded at 128. */
  g_autoptr (CxrImage) b = load_ok ("good/gray1.png", &info);
  assert_int_equal (info.bit_depth, 1);
  for (int i = 0; i < b->width * b->height; i++)
    assert_true (b->data[i] == (ref->data[i] * 255.f >= 127.5f ? 1.f : 0.f));
}

/* Writes a @w x @h gray PNG of @depth bits with libpng, every row with
 * filter @filter (a PNG_FILTER_* mask) and the stream cut into IDATs of
 * @idat bytes, from samples @v (0..65535, or 0..255 at 8 bits). */
static void
write_gray_png (const char *path, int w, int h, int depth, int filter, int idat, const guint16 *v)
{
  FILE *fp = fopen (path, "wb");
  assert_non_null (fp);
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct (png);
  assert_true (png && info);
  if (setjmp (png_jmpbuf (png)))
    fail_msg ("libpng could not write %s", path);
  png_init_io (png, fp);
  png_set_IHDR (png, info, w, h, depth, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_filter (png, 0, filter);
  png_set_compression_buffer_size (png, idat);
  png_write_info (png, info);
  g_autofree guint8 *row = g_new (guint8, (gsize) w * 2);
  for (int y = 0; y < h; y++)
    {
      for (int x = 0; x < w; x++)
        {
          guint16 s = v[(gsize) y * w + x];
          if (depth == 8)
            row[x] = (guint8) s;
          else
            {
              row[2 * x] = (guint8) (s >> 8);
              row[2 * x + 1] = (guint8) s;
            }
        }
      png_write_row (png, row);
    }
  png_write_end (png, NULL);
  png_destroy_write_struct (&png, &info);
  fclose (fp);
}

/* Gray films, the layout archives mostly hold, are decoded without
 * libpng (image-png.c's short road): every filter type, both depths,
 * several IDATs, must give the samples written, exactly; and a film the
 * short road must refuse (a bad CRC in an ancillary chunk, which libpng
 * only warns about) still decodes, through libpng. */
static void
test_gray_filters (void **state)
{
  enum { W = 37, H = 23 };
  guint16 v[W * H];
  guint32 r = 12345;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      {
        r = r * 1664525u + 1013904223u;
        /* a smooth ramp with noise, so that each filter has work */
        v[y * W + x] = (guint16) ((x * 1500 + y * 900 + (r >> 20)) & 0xffff);
      }
  static const struct {
    int filter;
    const char *name;
  } f[] = {
    { PNG_FILTER_NONE, "none" },   { PNG_FILTER_SUB, "sub" },     { PNG_FILTER_UP, "up" },
    { PNG_FILTER_AVG, "average" }, { PNG_FILTER_PAETH, "paeth" }, { PNG_ALL_FILTERS, "all" },
  };
  g_autofree char *dir = g_dir_make_tmp ("cxr-png-XXXXXX", NULL);
  assert_non_null (dir);
  g_autofree char *path = g_build_filename (dir, "f.png", NULL);
  for (int depth = 8; depth <= 16; depth += 8)
    for (guint k = 0; k < G_N_ELEMENTS (f); k++)
      for (int idat = 64; idat <= 8192; idat *= 128)
        {
          write_gray_png (path, W, H, depth, f[k].filter, idat, v);
          CxrImageInfo info;
          g_autoptr (GError) err = NULL;
          g_autoptr (CxrImage) im = cxr_image_load (path, NULL, &info, &err);
          if (im == NULL)
            fail_msg ("%d-bit, %s: %s", depth, f[k].name, err->message);
          assert_int_equal (info.bit_depth, depth);
          assert_string_equal (info.color_type, "gray");
          for (int i = 0; i < W * H; i++)
            {
              float want = depth == 8 ? (v[i] & 0xff) * (1.0f / 255.0f) : v[i] * (1.0f / 65535.0f);
              if (im->data[i] != want)
                fail_msg ("%d-bit, filter %s, IDATs of %d bytes: px %d is %g, want %g", depth,
                          f[k].name, idat, i, im->data[i], want);
            }
        }
  /* an ancillary chunk (tEXt) with a wrong CRC after IHDR: libpng warns
   * and goes on, so the film must still load with the same samples */
  write_gray_png (path, W, H, 8, PNG_FILTER_PAETH, 8192, v);
  g_autofree char *data = NULL;
  gsize len;
  assert_true (g_file_get_contents (path, &data, &len, NULL));
  static const guint8 text[] = { 0, 0, 0, 3, 't', 'E', 'X', 't', 'a', 0, 'b', 0, 0, 0, 0 };
  gsize at = 8 + 25; /* after the signature and IHDR */
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, (const guint8 *) data, at);
  g_byte_array_append (b, text, sizeof text);
  g_byte_array_append (b, (const guint8 *) data + at, len - at);
  assert_true (g_file_set_contents (path, (const char *) b->data, b->len, NULL));
  g_byte_array_unref (b);
  g_autoptr (GError) err = NULL;
  g_autoptr (CxrImage) im = cxr_image_load (path, NULL, NULL, &err);
  if (im == NULL)
    fail_msg ("a bad ancillary CRC: %s", err->message);
  for (int i = 0; i < W * H; i++)
    assert_true (im->data[i] == (v[i] & 0xff) * (1.0f / 255.0f));
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_bad_files (void **state)
{
  static const struct {
    const char *file;
    int code;
    const char *msg;
  } v[] = {
    { "bad/empty.png", CXR_ERROR_INVALID_INPUT, "empty file" },
    { "bad/not_png.png", CXR_ERROR_INVALID_INPUT, "not a PNG" },
    { "bad/truncated.png", CXR_ERROR_INVALID_INPUT, "truncated PNG (file ends at byte 1046)" },
    { "bad/no_iend.png", CXR_ERROR_INVALID_INPUT, "truncated PNG" },
    { "bad/bad_crc.png", CXR_ERROR_INVALID_INPUT, "IDAT: CRC error" },
    { "bad/corrupt_idat.png", CXR_ERROR_INVALID_INPUT, "IDAT: invalid" },
    { "bad/huge_dims.png", CXR_ERROR_INVALID_INPUT,
      "Invalid IHDR data (Image width exceeds user limit" },
    { "bad/over_limit.png", CXR_ERROR_LIMIT, "9000x9000 pixels exceeds the limit 8192x8192" },
    { "bad/zero_width.png", CXR_ERROR_INVALID_INPUT, "width is zero" },
    /* IDATs not in one run (a tEXt between them; tools/make_test_pngs.py):
     * refused in libpng's words, as the short road leaves such a film to
     * libpng (image-png.c) */
    { "bad/split_idat.png", CXR_ERROR_INVALID_INPUT, "Not enough image data" },
  };
  for (guint k = 0; k < G_N_ELEMENTS (v); k++)
    {
      g_autofree char *p = data_path (v[k].file);
      g_autoptr (GError) err = NULL;
      CxrImage *im = cxr_image_load (p, NULL, NULL, &err);
      assert_null (im);
      if (err == NULL || !g_error_matches (err, CXR_ERROR, v[k].code)
          || strstr (err->message, v[k].msg) == NULL || strstr (err->message, v[k].file) == NULL)
        fail_msg ("%s: got '%s' (code %d), want code %d with '%s'", v[k].file,
                  err ? err->message : "no error", err ? err->code : -1, v[k].code, v[k].msg);
    }
}

static void
test_limits_and_file_size (void **state)
{
  g_autofree char *p = data_path ("good/gray8.png");
  CxrImageLimits lim = { 32, 32, 1 << 20 };
  g_autoptr (GError) err = NULL;
  assert_null (cxr_image_load (p, &lim, NULL, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_LIMIT));
  g_clear_error (&err);
  lim = (CxrImageLimits){ 8192, 8192, 100 };
  assert_null (cxr_image_load (p, &lim, NULL, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_LIMIT));
  assert_non_null (strstr (err->message, "exceeds the limit of 100 bytes"));
}

static void
test_save_roundtrip (void **state)
{
  CxrImageInfo info;
  g_autoptr (CxrImage) ref = load_ok ("good/gray8.png", &info);
  g_autofree char *dir = g_dir_make_tmp ("cxr-img-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "o.png", NULL);
  for (int level = 1; level <= 9; level += 8)
    {
      g_autoptr (GError) err = NULL;
      assert_true (cxr_image_save_png (ref, out, level, &err));
      g_autoptr (CxrImage) back = cxr_image_load (out, NULL, NULL, &err);
      assert_non_null (back);
      assert_memory_equal (back->data, ref->data, sizeof (float) * 64 * 48);
    }
  g_unlink (out);
  g_rmdir (dir);
}

/* Shrinking by an exact integer factor is the mean of each f x f block
 * (the fast path of the area filter); a non-integer shrink of a smooth
 * ramp stays within the ramp's local values and keeps a constant
 * constant (the general kernels). */
static void
test_resize (void **state)
{
  g_autoptr (CxrImage) im = cxr_image_new (96, 72);
  GRand *r = g_rand_new_with_seed (7);
  for (gsize i = 0; i < 96 * 72; i++)
    im->data[i] = (float) g_rand_double (r);
  g_rand_free (r);
  for (int f = 2; f <= 4; f++)
    {
      g_autoptr (CxrImage) s = cxr_image_resize (im, 96 / f, 72 / f);
      for (int v = 0; v < 72 / f; v++)
        for (int u = 0; u < 96 / f; u++)
          {
            double acc = 0;
            for (int j = 0; j < f; j++)
              for (int i = 0; i < f; i++)
                acc += im->data[(gsize) (f * v + j) * 96 + f * u + i];
            float got = s->data[(gsize) v * (96 / f) + u];
            if (fabs (got - acc / (f * f)) > 1e-6)
              fail_msg ("factor %d, (%d, %d): %.7f, block mean %.7f", f, u, v, got, acc / (f * f));
          }
    }
  for (gsize i = 0; i < 96 * 72; i++)
    im->data[i] = (float) (i % 96) / 96.f; /* a ramp along x */
  g_autoptr (CxrImage) s = cxr_image_resize (im, 40, 30);
  for (int v = 0; v < 30; v++)
    for (int u = 0; u < 40; u++)
      {
        /* output u is centred on input x = 2.4 u + 0.7; the box average of
         * the pixel staircase is within a quarter pixel's step of the ramp
         * there (one output pixel off would be 2.4 steps) */
        double want = (2.4 * u + 0.7) / 96.0;
        if (u > 0 && u < 39 && fabs (s->data[(gsize) v * 40 + u] - want) > 0.25 / 96)
          fail_msg ("ramp at u = %d: %.5f, want %.5f", u, s->data[(gsize) v * 40 + u], want);
      }
  for (gsize i = 0; i < 96 * 72; i++)
    im->data[i] = 0.25f;
  g_autoptr (CxrImage) c = cxr_image_resize (im, 40, 30);
  for (gsize i = 0; i < 40 * 30; i++)
    assert_float_equal (c->data[i], 0.25f, 1e-6);
}

/* JPEG (libjpeg-turbo): baseline, colour, progressive, and films stored
 * turned with an EXIF orientation all read back as the upright crop they
 * were written from, to JPEG's loss at quality 95; a truncated file is
 * refused, not filled with grey; the size limit applies from the header. */
static void
test_jpeg (void **state)
{
  CxrImageInfo info;
  g_autoptr (CxrImage) ref = load_ok ("jpeg/upright.png", &info);
  assert_int_equal (ref->width, 96);
  assert_int_equal (ref->height, 64);
  static const struct {
    const char *file;
    const char *ct;
    gboolean progressive;
  } v[] = {
    { "jpeg/gray.jpg", "gray", FALSE },       { "jpeg/rgb.jpg", "rgb", FALSE },
    { "jpeg/progressive.jpg", "gray", TRUE }, { "jpeg/exif6.jpg", "gray", FALSE },
    { "jpeg/exif3.jpg", "gray", FALSE },
  };
  for (guint k = 0; k < G_N_ELEMENTS (v); k++)
    {
      g_autoptr (CxrImage) im = load_ok (v[k].file, &info);
      assert_int_equal (info.bit_depth, 8);
      assert_string_equal (info.color_type, v[k].ct);
      assert_int_equal (info.interlaced, v[k].progressive);
      assert_int_equal (info.width, 96);
      assert_int_equal (info.height, 64);
      assert_int_equal (im->width, 96);
      assert_int_equal (im->height, 64);
      double mean = 0, maxd = 0;
      for (int i = 0; i < im->width * im->height; i++)
        {
          double d = fabs (im->data[i] - ref->data[i]);
          mean += d;
          maxd = fmax (maxd, d);
        }
      mean /= im->width * im->height;
      /* turned or mirrored the wrong way, the crop differs by 0.05 on average */
      if (mean > 0.01 || maxd > 0.08)
        fail_msg ("%s: mean |difference| %.4f, max %.4f from upright.png", v[k].file, mean, maxd);
    }
  g_autofree char *trunc = data_path ("jpeg/truncated.jpg");
  g_autoptr (GError) err = NULL;
  assert_null (cxr_image_load (trunc, NULL, NULL, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_INVALID_INPUT));
  assert_non_null (strstr (err->message, "truncated.jpg"));
  g_clear_error (&err);
  g_autofree char *gray = data_path ("jpeg/gray.jpg");
  CxrImageLimits small = { 64, 64, 1 << 20 };
  assert_null (cxr_image_load (gray, &small, NULL, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_LIMIT));
  assert_non_null (strstr (err->message, "96x64 pixels exceeds the limit 64x64"));
}

/* Mean and largest |difference| of @im from @expect (a function of the
 * reference pixel), over pixels where @mask (or everywhere). */
static void
compare_dicom (const char *file, const CxrImage *im, const CxrImage *ref, double (*expect) (double),
               double max_mean, double max_abs)
{
  assert_int_equal (im->width, ref->width);
  assert_int_equal (im->height, ref->height);
  double mean = 0, maxd = 0;
  for (int i = 0; i < im->width * im->height; i++)
    {
      double d = fabs (im->data[i] - expect (ref->data[i]));
      mean += d;
      maxd = fmax (maxd, d);
    }
  mean /= im->width * im->height;
  if (mean > max_mean || maxd > max_abs)
    fail_msg ("%s: mean |difference| %.5f, max %.5f from the expected pixels", file, mean, maxd);
}

static double
same (double v)
{
  return v;
}

/* rescale_window12 read with --voi none: the modality values v (0..255)
 * over the range 12 stored bits hold after the LUT, -25 .. 998.75 */
static double
rescaled_full_range (double v)
{
  return (v * 255.0 + 25.0) / 1023.75;
}

static CxrImage *
load_dicom (const char *file, CxrVoi voi, CxrImageInfo *info)
{
  g_autofree char *path = data_path (file);
  CxrImageLimits lim = CXR_IMAGE_LIMITS_DEFAULT;
  lim.voi = voi;
  g_autoptr (GError) err = NULL;
  CxrImage *im = cxr_image_load (path, &lim, info, &err);
  if (im == NULL)
    fail_msg ("%s: %s", file, err->message);
  return im;
}

static void
test_dicom (void **state)
{
  CxrImageInfo info;
  g_autoptr (CxrImage) ref = load_ok ("dicom/reference.png", &info);
  /* lossless 8-bit films: the PNG's floats, bit for bit */
  static const char *const exact[] = {
    "dicom/mono2_8.dcm",
    "dicom/mono1_8.dcm",
    "dicom/implicit.dcm",
    "dicom/deflated.dcm",
    "dicom/jpegls.dcm",
    "dicom/jpeg_lossless.dcm",
    "dicom/rle.dcm",
    /* nested sequences of undefined and of defined length */
    "dicom/sequences.dcm",
    "dicom/sequences_implicit.dcm",
    /* reversible JPEG 2000 (OpenJPEG, image-j2k.c) */
    "dicom/j2k_lossless.dcm",
  };
  for (guint k = 0; k < G_N_ELEMENTS (exact); k++)
    {
      g_autoptr (CxrImage) im = load_dicom (exact[k], CXR_VOI_FIRST, &info);
      compare_dicom (exact[k], im, ref, same, 0, 0);
    }
  /* deeper films through a LUT: to the 16-bit output step */
  static const char *const deep[] = {
    "dicom/rescale_window12.dcm",
    "dicom/mono2_16.dcm",
    "dicom/jpeg_lossless12.dcm",
    "dicom/j2k_lossless16.dcm",
  };
  for (guint k = 0; k < G_N_ELEMENTS (deep); k++)
    {
      g_autoptr (CxrImage) im = load_dicom (deep[k], CXR_VOI_FIRST, &info);
      compare_dicom (deep[k], im, ref, same, 1e-4, 2e-3);
    }
  g_autoptr (CxrImage) m16 = load_dicom ("dicom/mono2_16.dcm", CXR_VOI_FIRST, &info);
  assert_int_equal (info.bit_depth, 16);
  assert_string_equal (info.color_type, "gray");
  /* colour to luminance is rounded to 8 bits by DCMTK: one step */
  g_autoptr (CxrImage) rgb = load_dicom ("dicom/rgb8.dcm", CXR_VOI_FIRST, &info);
  assert_string_equal (info.color_type, "rgb");
  compare_dicom ("rgb8", rgb, ref, same, 2e-3, 1.01 / 255);
  g_autoptr (CxrImage) lossy = load_dicom ("dicom/jpeg_baseline.dcm", CXR_VOI_FIRST, &info);
  compare_dicom ("jpeg_baseline", lossy, ref, same, 0.01, 0.08);
  g_autoptr (CxrImage) lossy2k = load_dicom ("dicom/j2k_lossy.dcm", CXR_VOI_FIRST, &info);
  compare_dicom ("j2k_lossy", lossy2k, ref, same, 0.015, 0.08);

  /* without the window, the Modality LUT's whole range */
  g_autoptr (CxrImage) full = load_dicom ("dicom/rescale_window12.dcm", CXR_VOI_NONE, &info);
  assert_int_equal (info.bit_depth, 12);
  compare_dicom ("rescale_window12 --voi none", full, ref, rescaled_full_range, 1e-4, 2e-3);

  /* padding: black, and no part of the automatic window */
  g_autoptr (CxrImage) pad = load_dicom ("dicom/signed_pad16.dcm", CXR_VOI_AUTO, &info);
  double lo = 1, hi = 0;
  for (int y = 4; y < ref->height - 4; y++)
    for (int x = 4; x < ref->width - 4; x++)
      {
        lo = fmin (lo, ref->data[y * ref->width + x]);
        hi = fmax (hi, ref->data[y * ref->width + x]);
      }
  double maxd = 0;
  for (int y = 0; y < ref->height; y++)
    for (int x = 0; x < ref->width; x++)
      {
        gboolean border = x < 4 || y < 4 || x >= ref->width - 4 || y >= ref->height - 4;
        double want = border ? 0.0 : (ref->data[y * ref->width + x] - lo) / (hi - lo);
        maxd = fmax (maxd, fabs (pad->data[y * ref->width + x] - want));
      }
  if (maxd > 2e-3)
    fail_msg ("signed_pad16 --voi auto: max |difference| %.4f", maxd);

  static const struct {
    const char *file, *why;
  } bad[] = {
    { "dicom/truncated.dcm", "truncated: the file ends inside" },
    { "dicom/multiframe.dcm", "multi-frame object (2 frames)" },
    { "dicom/j2k_labelled.dcm", "JPEG 2000: the codestream's header cannot be read" },
    { "dicom/j2k_size.dcm", "the JPEG 2000 codestream is 128x128, the header says 96x64" },
    { "dicom/j2k_rgb.dcm", "JPEG 2000 with 3 components" },
    { "dicom/j2k_cut.dcm", "JPEG 2000: the codestream cannot be decoded" },
    { "dicom/j2k_20bit.dcm", "JPEG 2000 samples of 20 bits: cxrtrack reads 1-16" },
    { "dicom/deflated_corrupt.dcm", "(its deflated data set: invalid block type)" },
    { "dicom/deflated_meta_cut.dcm", "a deflated data set whose file meta group cannot be read" },
    { "dicom/sr.dcm", "no Pixel Data" },
    /* declared lengths beyond the file, named (tests/cli/dicom.sh checks
     * DCMTK does not allocate them first) */
    { "dicom/huge_un.dcm", "(0011,1010) declares 3758096384 bytes, the file has 6902" },
    { "dicom/huge_nested.dcm", "(0011,1010) declares 3758096384 bytes, the file has 6938" },
    { "dicom/huge_deflated.dcm", "(0011,1010) declares 3758096384 bytes, the file has 6904" },
    { "dicom/huge_implicit.dcm", "Length of element larger than explicit length of surrounding" },
  };
  for (guint k = 0; k < G_N_ELEMENTS (bad); k++)
    {
      g_autofree char *path = data_path (bad[k].file);
      g_autoptr (GError) err = NULL;
      assert_null (cxr_image_load (path, NULL, NULL, &err));
      assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_INVALID_INPUT));
      if (strstr (err->message, bad[k].why) == NULL || strstr (err->message, bad[k].file) == NULL)
        fail_msg ("%s: '%s' does not say '%s'", bad[k].file, err->message, bad[k].why);
    }
  g_autofree char *m8 = data_path ("dicom/mono2_8.dcm");
  g_autoptr (GError) err = NULL;
  CxrImageLimits small = { 64, 64, 1 << 20 };
  assert_null (cxr_image_load (m8, &small, NULL, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_LIMIT));
  assert_non_null (strstr (err->message, "96x64 pixels exceeds the limit 64x64"));
  /* a deflated data set inflates within the file size limit or not at all:
   * deflated.dcm (4.5 KB) inflates to 6.8 KB */
  g_autofree char *dfl = data_path ("dicom/deflated.dcm");
  g_autoptr (GError) err2 = NULL;
  CxrImageLimits tight = { 8192, 8192, 5000 };
  assert_null (cxr_image_load (dfl, &tight, NULL, &err2));
  assert_true (g_error_matches (err2, CXR_ERROR, CXR_ERROR_LIMIT));
  assert_non_null (
      strstr (err2->message, "the deflated data set inflates to more than 5000 bytes"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_variants_match_gray8),
    cmocka_unit_test (test_gray_filters),
    cmocka_unit_test (test_bad_files),
    cmocka_unit_test (test_limits_and_file_size),
    cmocka_unit_test (test_save_roundtrip),
    cmocka_unit_test (test_resize),
    cmocka_unit_test (test_jpeg),
    cmocka_unit_test (test_dicom),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
