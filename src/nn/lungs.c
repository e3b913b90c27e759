/* SPDX-License-Identifier: MIT
 *
 * The lung-field segmenter (lungs.h): the cxr-lungnet U-Net in C, on the
 * layers of nn.c, and the post-processing that turns its probabilities
 * into a mask to rely on.
 *
 * Network (tools/train_lungs.py trains it; tensor names are PyTorch's): a
 * stride-2 3x3 convolution, encoder levels at 1/2, 1/4, 1/8 and 1/16 of
 * the input (two 3x3 convolutions each, batch norm folded in, ReLU; 2x2
 * max pooling between), a decoder that doubles the size bilinearly
 * (PyTorch's align_corners=False), concatenates the encoder's output of
 * that size and applies one 3x3 convolution, then a 1x1 convolution to a
 * logit map at half the input size, doubled bilinearly to the input size.
 * Concatenation costs nothing: each decoder level owns one buffer, the
 * upsampled map in its first channels and the encoder level that feeds it
 * writing straight into the rest.
 *
 * Post-processing, on the network's grid (input_size square): lung where
 * p > 0.5; 4-connected components; the two largest kept, the one further
 * left in the image being the patient's right lung; holes in each filled.
 * The film-size mask is each lung's grid mask resampled bilinearly to the
 * film and cut at 0.5, so its edge is smooth at any film size.
 *
 * Quality = (how decided the network is inside the lungs' bounding box:
 * the mean of |2p - 1| there) x (the share of the lung pixels the two
 * kept components hold). Status 'implausible', with the reason, when one
 * lung is missing or tiny (under 3.5 % of the film, smaller than any of
 * the 1,532 lung fields of the training masks; when the other is
 * plausible alone, on its half of the film, 4-30 % of it, quality >= 0.6,
 * airless_side names the side without aerated lung), the lungs' share of the
 * film is outside 0.06..0.55 (the 766 training masks span 0.085..0.45),
 * the lungs are not side by side (centroids less than 15 % of the width
 * apart, or more than 20 % of the height apart vertically, or one lung
 * over three times the other), or the quality is under 0.6.
 */
#include <math.h>
#include <string.h>

#include "cxr/error.h"
#include "cxr/lungs.h"
#include "cxr/safetensors.h"
#include "nn-private.h"
#include "sgemm-private.h"

#define LEVELS 4

struct _CxrLungModel {
  char *name, *metadata_json;
  GMappedFile *file; /* hashed when its sha256 is first asked for */
  gsize sha256_once; /* the hex SHA-256 (char *) once computed */
  int input_size;
  float mean, std;
  gboolean equalize;       /* input_equalize "histogram": see preprocess */
  int w[LEVELS];           /* channels at 1/2, 1/4, 1/8, 1/16 of the input */
  CxrConv stem, enc0;      /* level 0 has one convolution after the stem */
  CxrConv enc[LEVELS][2];  /* levels 1..3: two each */
  CxrConv dec[LEVELS - 1]; /* dec[l]: to level l from level l + 1 */
  CxrConv head;
};

void
cxr_lung_model_free (CxrLungModel *m)
{
  if (m == NULL)
    return;
  cxr__conv_clear (&m->stem);
  cxr__conv_clear (&m->enc0);
  for (int l = 0; l < LEVELS; l++)
    for (int k = 0; k < 2; k++)
      cxr__conv_clear (&m->enc[l][k]);
  for (int l = 0; l < LEVELS - 1; l++)
    cxr__conv_clear (&m->dec[l]);
  cxr__conv_clear (&m->head);
  g_free (m->name);
  if (m->sha256_once)
    g_free ((char *) m->sha256_once);
  if (m->file)
    g_mapped_file_unref (m->file);
  g_free (m->metadata_json);
  g_free (m);
}

const char *
cxr_lung_model_name (const CxrLungModel *m)
{
  return m->name;
}

/* The model's SHA-256, of the file as loaded (it stays mapped), computed
 * on the first call: a single `register` call never asks, analyze once. */
const char *
cxr_lung_model_sha256 (const CxrLungModel *m)
{
  CxrLungModel *mm = (CxrLungModel *) m; /* a cache, filled once */
  if (g_once_init_enter (&mm->sha256_once))
    g_once_init_leave (&mm->sha256_once, (gsize) cxr__mapped_file_sha256 (mm->file));
  return (const char *) mm->sha256_once;
}

const char *
cxr_lung_model_metadata_json (const CxrLungModel *m)
{
  return m->metadata_json;
}

int
cxr_lung_model_input_size (const CxrLungModel *m)
{
  return m->input_size;
}

/* A 3x3 convolution followed by batch norm, folded into one. */
static gboolean
take_conv_bn (CxrTensorLoader *ld, const char *prefix, int ci, int co, int stride, CxrConv *out,
              GError **error)
{
  g_autofree char *wn = g_strconcat (prefix, ".0.weight", NULL);
  g_autofree char *bn = g_strconcat (prefix, ".1", NULL);
  CxrAffine a = { 0 };
  if (!cxr__take_conv (ld, wn, ci, co, 3, stride, 1, out, error)
      || !cxr__take_bn (ld, bn, co, &a, error))
    return FALSE;
  cxr__fold (out, &a);
  cxr__affine_clear (&a);
  cxr__conv_pack (out);
  return TRUE;
}

static gboolean
parse_metadata (CxrLungModel *m, CxrSafetensors *st, const char *path, GError **error)
{
  const char *arch = cxr_safetensors_metadata (st, "architecture");
  if (arch == NULL || !g_str_equal (arch, "cxr-lungnet"))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: architecture '%s' is not a lung segmenter (cxr-lungnet)", path,
                   arch ? arch : "(none)");
      return FALSE;
    }
  const char *size = cxr_safetensors_metadata (st, "input_size");
  const char *widths = cxr_safetensors_metadata (st, "widths");
  const char *mean = cxr_safetensors_metadata (st, "input_mean");
  const char *sd = cxr_safetensors_metadata (st, "input_std");
  if (size == NULL || widths == NULL || mean == NULL || sd == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: __metadata__ needs input_size, widths, input_mean and input_std", path);
      return FALSE;
    }
  char *end;
  gint64 s = g_ascii_strtoll (size, &end, 10);
  if (*end || s < 32 || s > 1024 || s % 32)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: input_size '%s' is not a multiple of 32 in 32..1024", path, size);
      return FALSE;
    }
  m->input_size = (int) s;
  g_auto (GStrv) w = g_strsplit (widths, ",", -1);
  if (g_strv_length (w) != LEVELS)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL, "%s: widths needs %d numbers", path, LEVELS);
      return FALSE;
    }
  for (int l = 0; l < LEVELS; l++)
    {
      gint64 v = g_ascii_strtoll (w[l], &end, 10);
      if (*end || v < 1 || v > 512)
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL, "%s: width '%s' is not 1..512", path,
                       w[l]);
          return FALSE;
        }
      m->w[l] = (int) v;
    }
  m->mean = (float) g_ascii_strtod (mean, &end);
  gboolean bad = *end != '\0';
  m->std = (float) g_ascii_strtod (sd, &end);
  if (bad || *end || !isfinite (m->mean) || !(m->std > 0) || !isfinite (m->std))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: input_mean and input_std must be numbers, the std positive", path);
      return FALSE;
    }
  const char *eq = cxr_safetensors_metadata (st, "input_equalize");
  if (eq && !g_str_equal (eq, "none") && !g_str_equal (eq, "histogram"))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: input_equalize '%s' is neither 'none' nor 'histogram'", path, eq);
      return FALSE;
    }
  m->equalize = eq && g_str_equal (eq, "histogram");
  const char *name = cxr_safetensors_metadata (st, "name");
  m->name = g_strdup (name ? name : "cxr-lungnet");
  g_autoptr (GString) json = g_string_new ("{");
  const char *keys[]
      = { "name", "architecture", "input_size", "widths", "input_equalize", "version", "source" };
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      const char *v = cxr_safetensors_metadata (st, keys[i]);
      if (v == NULL)
        continue;
      g_autofree char *ev = g_strescape (v, NULL);
      g_string_append_printf (json, "%s\"%s\":\"%s\"", json->len > 1 ? "," : "", keys[i], ev);
    }
  g_string_append_c (json, '}');
  m->metadata_json = g_string_free (g_steal_pointer (&json), FALSE);
  return TRUE;
}

/**
 * cxr_lung_model_load:
 * Loads and validates a lung segmenter (CXR_ERROR_MODEL for anything
 * wrong with the file, naming the file and tensor).
 *
 * Returns: (transfer full): the model, or %NULL.
 */
CxrLungModel *
cxr_lung_model_load (const char *path, GError **error)
{
  g_autoptr (CxrSafetensors) st = cxr_safetensors_open (path, error);
  if (st == NULL)
    return NULL;
  g_autoptr (CxrLungModel) m = g_new0 (CxrLungModel, 1);
  if (!parse_metadata (m, st, path, error))
    return NULL;
  m->file = cxr__safetensors_file (st);
  CxrTensorLoader ld = { st, path, g_hash_table_new (g_str_hash, g_str_equal) };
  const int *w = m->w;
  gboolean ok = take_conv_bn (&ld, "stem", 1, w[0], 2, &m->stem, error)
                && take_conv_bn (&ld, "enc0", w[0], w[0], 1, &m->enc0, error);
  for (int l = 1; ok && l < LEVELS; l++)
    {
      g_autofree char *a = g_strdup_printf ("enc%d.0", l), *b = g_strdup_printf ("enc%d.1", l);
      ok = take_conv_bn (&ld, a, w[l - 1], w[l], 1, &m->enc[l][0], error)
           && take_conv_bn (&ld, b, w[l], w[l], 1, &m->enc[l][1], error);
    }
  for (int l = LEVELS - 2; ok && l >= 0; l--)
    {
      g_autofree char *d = g_strdup_printf ("dec%d", l);
      ok = take_conv_bn (&ld, d, w[l + 1] + w[l], w[l], 1, &m->dec[l], error);
    }
  if (ok)
    {
      gint64 hb[1] = { 1 };
      ok = cxr__take_conv (&ld, "head.weight", w[0], 1, 1, 1, 0, &m->head, error);
      m->head.b = ok ? cxr__take (&ld, "head.bias", 1, hb, error) : NULL;
      ok = ok && m->head.b != NULL;
    }
  if (ok && g_hash_table_size (ld.used) != cxr_safetensors_n_tensors (st))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: %u tensors that cxr-lungnet does not have (a different architecture?)",
                   path, cxr_safetensors_n_tensors (st) - g_hash_table_size (ld.used));
      ok = FALSE;
    }
  g_hash_table_unref (ld.used);
  return ok ? g_steal_pointer (&m) : NULL;
}

/* Each thread keeps its arena for the next film (see model.c). */
static GPrivate arena_key = G_PRIVATE_INIT (cxr__thread_buffer_free);

/**
 * cxr_lungs_release_scratch:
 * Frees the calling thread's scratch of the lung network, which is kept
 * between films so that a loop over films reuses it. A program that
 * segments a film or two and goes on to other work calls it: what it
 * allocates next then lands on heap pages already touched, not on fresh
 * ones the kernel must zero (a single `register` call: 27 MB, about 10
 * MB of it touched).
 */
void
cxr_lungs_release_scratch (void)
{
  g_private_replace (&arena_key, NULL);
}

/**
 * cxr_lung_model_forward:
 * Returns: (transfer full): the lung probability at each of the
 * input_size x input_size pixels. Thread-safe.
 */
float *
cxr_lung_model_forward (const CxrLungModel *m, const float *input)
{
  const int *w = m->w;
  int s = m->input_size, n[LEVELS];
  for (int l = 0; l < LEVELS; l++)
    n[l] = s >> (l + 1);
  /* cat[l]: the decoder's input at level l (l < LEVELS - 1): the doubled
   * map of level l + 1 in its first w[l + 1] channels, level l's encoder
   * output after them; level LEVELS - 1's output is bot. */
  gsize sz[LEVELS], total = 0;
  for (int l = 0; l < LEVELS - 1; l++)
    sz[l] = (gsize) (w[l + 1] + w[l]) * n[l] * n[l];
  sz[LEVELS - 1] = (gsize) w[LEVELS - 1] * n[LEVELS - 1] * n[LEVELS - 1];
  /* scratch: any level's map (ta, tb), and im2col of the widest input */
  gsize tmp_n = 0, col_n = 0;
  for (int l = 0; l < LEVELS; l++)
    {
      gsize hw = (gsize) n[l] * n[l];
      int below = l ? w[l - 1] : 1, cat = l < LEVELS - 1 ? w[l + 1] + w[l] : 0;
      total += sz[l];
      tmp_n = MAX (tmp_n, (gsize) MAX (w[l], below) * hw);
      col_n = MAX (col_n, (gsize) 9 * MAX (MAX (below, w[l]), cat) * hw);
    }
  float *arena = cxr__thread_buffer (&arena_key, total + 2 * tmp_n + col_n);
  float *cat[LEVELS], *t = arena;
  for (int l = 0; l < LEVELS; l++)
    {
      cat[l] = t;
      t += sz[l];
    }
  float *ta = t, *tb = ta + tmp_n, *col = tb + tmp_n;
#define SKIP(l) (cat[l] + (gsize) w[l + 1] * n[l] * n[l]) /* level l's output */

  /* encoder */
  cxr__conv_forward (&m->stem, input, s, s, ta, col, TRUE);
  cxr__conv_forward (&m->enc0, ta, n[0], n[0], SKIP (0), col, TRUE);
  for (int l = 1; l < LEVELS; l++)
    {
      const float *below = SKIP (l - 1);
      float *out = l < LEVELS - 1 ? SKIP (l) : cat[LEVELS - 1];
      cxr__max_pool2 (below, w[l - 1], n[l - 1], ta);
      cxr__conv_forward (&m->enc[l][0], ta, n[l], n[l], tb, col, TRUE);
      cxr__conv_forward (&m->enc[l][1], tb, n[l], n[l], out, col, TRUE);
    }
  /* decoder: double, concatenate (in place), convolve */
  const float *up = cat[LEVELS - 1];
  for (int l = LEVELS - 2; l >= 0; l--)
    {
      cxr__upsample2 (up, w[l + 1], n[l + 1], cat[l]);
      cxr__conv_forward (&m->dec[l], cat[l], n[l], n[l], ta, col, TRUE);
      /* the next level's upsampling reads ta: keep it apart from tb */
      float *keep = ta;
      ta = tb;
      tb = keep;
      up = tb;
    }
#undef SKIP
  /* head: one logit at half size, doubled, then the sigmoid */
  cxr__conv_forward (&m->head, up, n[0], n[0], ta, NULL, FALSE);
  float *p = g_new (float, (gsize) s * s);
  cxr__upsample2 (ta, 1, n[0], p);
  for (gsize i = 0; i < (gsize) s * s; i++)
    p[i] = 1.0f / (1.0f + expf (-p[i]));
  return p;
}

/* Histogram equalisation of @n grey values in [0, 1], in place, as
 * tools/train_lungs.py's equalize(): 256 levels (round(255 v), clamped),
 * each level mapped to the share of the values at or below it, counted
 * from the lowest level present (which maps to 0) up to 1. */
static void
equalize (float *v, gsize n)
{
  g_autofree guint8 *q = g_new (guint8, n);
  guint64 cum[256] = { 0 };
  for (gsize i = 0; i < n; i++)
    {
      double l = floor ((double) v[i] * 255 + 0.5);
      q[i] = (guint8) (isnan (l) ? 0 : CLAMP (l, 0, 255));
      cum[q[i]]++;
    }
  int first = 0;
  while (first < 255 && cum[first] == 0)
    first++;
  for (int b = 1; b < 256; b++)
    cum[b] += cum[b - 1];
  guint64 low = cum[first];
  double den = n > low ? (double) (n - low) : 1;
  float lut[256];
  for (int b = 0; b < 256; b++)
    lut[b] = b < first ? 0.f : (float) ((double) (cum[b] - low) / den);
  for (gsize i = 0; i < n; i++)
    v[i] = lut[q[i]];
}

/**
 * cxr_lung_model_preprocess:
 * The film resized to input_size x input_size (area filter, not keeping
 * its shape, as in training), histogram-equalised when the model asks for
 * it (input_equalize "histogram": flat, hazy portable films then spread
 * their grey like the screening films the network learnt from), and
 * normalised: (v - mean) / std.
 *
 * Returns: (transfer full): input_size^2 floats.
 */
float *
cxr_lung_model_preprocess (const CxrLungModel *m, const CxrImage *film)
{
  int s = m->input_size;
  gsize n = (gsize) s * s;
  g_autoptr (CxrImage) r = cxr_image_resize (film, s, s);
  float *x = g_new (float, n);
  memcpy (x, r->data, n * sizeof (float));
  if (m->equalize)
    equalize (x, n);
  for (gsize i = 0; i < n; i++)
    x[i] = (x[i] - m->mean) / m->std;
  return x;
}

/* --- post-processing --------------------------------------------------------- */

/* 4-connected components of bin (n x n) into lab (1-based, 0 background);
 * returns how many, their areas in area[] (index = label). */
static int
components (const guint8 *bin, int n, int *lab, GArray *area)
{
  gsize nn = (gsize) n * n;
  memset (lab, 0, nn * sizeof (int));
  g_autofree int *stack = g_new (int, nn);
  int count = 0;
  g_array_set_size (area, 1);
  for (gsize i = 0; i < nn; i++)
    {
      if (!bin[i] || lab[i])
        continue;
      int id = ++count, sp = 0;
      guint64 a = 0;
      lab[i] = id;
      stack[sp++] = (int) i;
      while (sp)
        {
          int p = stack[--sp], x = p % n, y = p / n;
          a++;
          int nb[4] = { x > 0 ? p - 1 : -1, x < n - 1 ? p + 1 : -1, y > 0 ? p - n : -1,
                        y < n - 1 ? p + n : -1 };
          for (int k = 0; k < 4; k++)
            if (nb[k] >= 0 && bin[nb[k]] && !lab[nb[k]])
              {
                lab[nb[k]] = id;
                stack[sp++] = nb[k];
              }
        }
      g_array_append_val (area, a);
    }
  return count;
}

/* One lung's grid mask with its holes filled: what the background, seen
 * from the border, cannot reach is lung. */
static void
fill_holes (guint8 *m, int n)
{
  gsize nn = (gsize) n * n;
  g_autofree guint8 *outside = g_new0 (guint8, nn);
  g_autofree int *stack = g_new (int, nn);
  int sp = 0;
  for (int i = 0; i < n; i++)
    {
      int edge[4] = { i, (n - 1) * n + i, i * n, i * n + n - 1 };
      for (int k = 0; k < 4; k++)
        if (!m[edge[k]] && !outside[edge[k]])
          {
            outside[edge[k]] = 1;
            stack[sp++] = edge[k];
          }
    }
  while (sp)
    {
      int p = stack[--sp], x = p % n, y = p / n;
      int nb[4] = { x > 0 ? p - 1 : -1, x < n - 1 ? p + 1 : -1, y > 0 ? p - n : -1,
                    y < n - 1 ? p + n : -1 };
      for (int k = 0; k < 4; k++)
        if (nb[k] >= 0 && !m[nb[k]] && !outside[nb[k]])
          {
            outside[nb[k]] = 1;
            stack[sp++] = nb[k];
          }
    }
  for (gsize i = 0; i < nn; i++)
    if (!outside[i])
      m[i] = 1;
}

const char *
cxr_lungs_status_name (CxrLungStatus s)
{
  return s == CXR_LUNGS_OK ? "ok" : "implausible";
}

void
cxr_lung_fields_free (CxrLungFields *l)
{
  if (l == NULL)
    return;
  g_free (l->mask);
  g_free (l);
}

/**
 * cxr_lung_fields_rotate_180:
 * Returns: (transfer full): the lung fields of the film turned half a
 * turn: the mask turned with it, and as the segmenter names lungs by their
 * side of the image (1 on the image's left), the two labels, areas and
 * the box swapped to match.
 */
CxrLungFields *
cxr_lung_fields_rotate_180 (const CxrLungFields *l)
{
  CxrLungFields *r = g_memdup2 (l, sizeof *l);
  gsize n = (gsize) l->width * l->height;
  r->mask = g_new (guint8, n);
  for (gsize i = 0; i < n; i++)
    {
      guint8 v = l->mask[n - 1 - i];
      r->mask[i] = v == 1 ? 2 : v == 2 ? 1 : v;
    }
  r->right_area_px = l->left_area_px;
  r->left_area_px = l->right_area_px;
  r->bbox_x0 = l->width - 1 - l->bbox_x1;
  r->bbox_x1 = l->width - 1 - l->bbox_x0;
  r->bbox_y0 = l->height - 1 - l->bbox_y1;
  r->bbox_y1 = l->height - 1 - l->bbox_y0;
  r->cardiothoracic_ratio = cxr_lungs_cardiothoracic_ratio (r);
  return r;
}

/* The grid masks of both lungs (n x n, 0/1) resampled bilinearly to the
 * film and cut at 0.5: 1 right, 2 left; with each lung's area and both
 * lungs' bounding box. Grid pixel u covers film coordinates around
 * (u + 0.5) * W / n - 0.5, so the film px of a row fall in runs that share
 * one grid cell. Where a cell's four corners agree in both masks every px
 * of its run has their value exactly (the bilinear weights sum to one),
 * so only the cells on a lung's border are interpolated px by px: the
 * same mask as interpolating every px, for about a fifth of the work. */
static void
to_film (const guint8 *right, const guint8 *left, int n, CxrLungFields *out)
{
  int W = out->width, H = out->height;
  double kx = (double) n / W, ky = (double) n / H;
  g_autofree int *x0 = g_new (int, W);
  g_autofree float *fx = g_new (float, W);
  g_autofree int *run = g_new (int, W + 1); /* first px of each run */
  int nrun = 0;
  for (int x = 0; x < W; x++)
    {
      double g = (x + 0.5) * kx - 0.5;
      g = CLAMP (g, 0.0, n - 1.0);
      x0[x] = MIN ((int) g, n - 2);
      fx[x] = (float) (g - x0[x]);
      if (x == 0 || x0[x] != x0[x - 1])
        run[nrun++] = x;
    }
  run[nrun] = W;
  double area[3] = { 0, 0, 0 };
  int bx0 = W, by0 = H, bx1 = -1, by1 = -1;
  for (int y = 0; y < H; y++)
    {
      double g = CLAMP ((y + 0.5) * ky - 0.5, 0.0, n - 1.0);
      int y0 = MIN ((int) g, n - 2);
      float fy = (float) (g - y0);
      const guint8 *r0 = right + (gsize) y0 * n, *r1 = r0 + n;
      const guint8 *l0 = left + (gsize) y0 * n, *l1 = l0 + n;
      guint8 *o = out->mask + (gsize) y * W;
      int first = W, last = -1;
      for (int k = 0; k < nrun; k++)
        {
          int xs = run[k], xe = run[k + 1], a = x0[xs];
          guint8 cr = r0[a], cl = l0[a];
          if (r0[a + 1] == cr && r1[a] == cr && r1[a + 1] == cr && l0[a + 1] == cl && l1[a] == cl
              && l1[a + 1] == cl)
            {
              float vr = cr, vl = cl;
              guint8 v = vr > 0.5f && vr >= vl ? 1 : vl > 0.5f ? 2 : 0;
              memset (o + xs, v, (gsize) (xe - xs));
              if (v)
                {
                  area[v] += xe - xs;
                  first = MIN (first, xs);
                  last = xe - 1;
                }
              continue;
            }
          for (int x = xs; x < xe; x++)
            {
              float ax = fx[x];
              float tr = r0[a] + ax * (r0[a + 1] - r0[a]), br = r1[a] + ax * (r1[a + 1] - r1[a]);
              float tl = l0[a] + ax * (l0[a + 1] - l0[a]), bl = l1[a] + ax * (l1[a + 1] - l1[a]);
              float vr = tr + fy * (br - tr), vl = tl + fy * (bl - tl);
              guint8 v = vr > 0.5f && vr >= vl ? 1 : vl > 0.5f ? 2 : 0;
              o[x] = v;
              if (v)
                {
                  area[v]++;
                  first = MIN (first, x);
                  last = x;
                }
            }
        }
      if (last >= 0)
        {
          bx0 = MIN (bx0, first);
          bx1 = MAX (bx1, last);
          by0 = MIN (by0, y);
          by1 = y;
        }
    }
  out->right_area_px = area[1];
  out->left_area_px = area[2];
  out->lung_fraction = (area[1] + area[2]) / ((double) W * H);
  out->bbox_x0 = bx1 >= 0 ? bx0 : 0;
  out->bbox_y0 = bx1 >= 0 ? by0 : 0;
  out->bbox_x1 = bx1 >= 0 ? bx1 : -1;
  out->bbox_y1 = bx1 >= 0 ? by1 : -1;
}

/* Area, centroid and bounding box of a grid mask. */
typedef struct {
  double area, cx, cy;
} Blob;

static Blob
blob_of (const guint8 *m, int n)
{
  Blob b = { 0, 0, 0 };
  for (int y = 0; y < n; y++)
    for (int x = 0; x < n; x++)
      if (m[(gsize) y * n + x])
        {
          b.area++;
          b.cx += x;
          b.cy += y;
        }
  if (b.area > 0)
    {
      b.cx /= b.area;
      b.cy /= b.area;
    }
  return b;
}

/**
 * cxr_lungs_segment:
 * The lung fields of @film (any size; its pixels taken as the network
 * was trained: the film squashed to a square). See the top of this file
 * for the post-processing, the quality and the status.
 *
 * Returns: (transfer full): the lung fields, or %NULL with @error set
 * when the film is too small to segment.
 */
CxrLungFields *
cxr_lungs_segment (const CxrLungModel *m, const CxrImage *film, GError **error)
{
  if (film->width < 32 || film->height < 32)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "a film of %dx%d px: lung fields need at least 32x32", film->width,
                   film->height);
      return NULL;
    }
  gint64 t0 = g_get_monotonic_time ();
  int n = m->input_size;
  gsize nn = (gsize) n * n;
  g_autofree float *x = cxr_lung_model_preprocess (m, film);
  g_autofree float *p = cxr_lung_model_forward (m, x);

  g_autofree guint8 *bin = g_new (guint8, nn);
  for (gsize i = 0; i < nn; i++)
    bin[i] = p[i] > 0.5f;
  g_autofree int *lab = g_new (int, nn);
  g_autoptr (GArray) area = g_array_new (FALSE, TRUE, sizeof (guint64));
  int nc = components (bin, n, lab, area);
  /* the two largest */
  int best[2] = { 0, 0 };
  guint64 all = 0;
  for (int c = 1; c <= nc; c++)
    {
      guint64 a = g_array_index (area, guint64, c);
      all += a;
      if (best[0] == 0 || a > g_array_index (area, guint64, best[0]))
        {
          best[1] = best[0];
          best[0] = c;
        }
      else if (best[1] == 0 || a > g_array_index (area, guint64, best[1]))
        best[1] = c;
    }
  guint8 *lung[2] = { g_new0 (guint8, nn), g_new0 (guint8, nn) };
  Blob blob[2] = { { 0 }, { 0 } };
  guint64 kept = 0;
  for (int k = 0; k < 2; k++)
    if (best[k])
      {
        for (gsize i = 0; i < nn; i++)
          lung[k][i] = lab[i] == best[k];
        kept += g_array_index (area, guint64, best[k]);
        fill_holes (lung[k], n);
        blob[k] = blob_of (lung[k], n);
      }
  /* the one further left in the image is the patient's right lung; a
   * lone one by the half of the film it lies in */
  if (best[1] ? blob[1].cx < blob[0].cx : best[0] && blob[0].cx > 0.5 * (n - 1))
    {
      guint8 *t = lung[0];
      lung[0] = lung[1];
      lung[1] = t;
      Blob b = blob[0];
      blob[0] = blob[1];
      blob[1] = b;
    }

  CxrLungFields *out = g_new0 (CxrLungFields, 1);
  out->width = film->width;
  out->height = film->height;
  out->mask = g_new (guint8, (gsize) film->width * film->height);
  to_film (lung[0], lung[1], n, out);

  /* quality: how decided the network is inside the lungs' box, times the
   * share of its lung pixels the two kept components hold */
  double decided = 0, cnt = 0;
  if (out->bbox_x1 >= 0)
    {
      int gx0 = (int) ((double) out->bbox_x0 * n / film->width),
          gx1 = (int) ((double) out->bbox_x1 * n / film->width);
      int gy0 = (int) ((double) out->bbox_y0 * n / film->height),
          gy1 = (int) ((double) out->bbox_y1 * n / film->height);
      for (int y = gy0; y <= MIN (gy1, n - 1); y++)
        for (int xx = gx0; xx <= MIN (gx1, n - 1); xx++)
          {
            decided += fabsf (2 * p[(gsize) y * n + xx] - 1);
            cnt++;
          }
    }
  out->quality = cnt > 0 && all > 0 ? decided / cnt * ((double) kept / all) : 0;

  double fr = blob[0].area / nn, fl = blob[1].area / nn;
  if (fr < 0.035 || fl < 0.035)
    {
      /* one side without a lung: the other may still be a lung alone */
      gboolean right = fr >= fl;
      const Blob *b = &blob[right ? 0 : 1];
      double share = b->area / nn;
      gboolean own_half = right ? b->cx < 0.5 * (n - 1) : b->cx > 0.5 * (n - 1);
      if (own_half && share >= 0.04 && share <= 0.30 && out->quality >= 0.6)
        {
          out->airless_side = right ? "left" : "right";
          out->reason = right ? "no aerated lung found on the patient's left side (the right lung "
                                "is plausible alone)"
                              : "no aerated lung found on the patient's right side (the left lung "
                                "is plausible alone)";
        }
      else
        out->reason = "one lung is missing or tiny";
    }
  else if (out->lung_fraction < 0.06 || out->lung_fraction > 0.55)
    out->reason = "the lungs' share of the film is outside the range seen in training";
  else if (blob[1].cx - blob[0].cx < 0.15 * n || fabs (blob[1].cy - blob[0].cy) > 0.2 * n
           || fr > 3 * fl || fl > 3 * fr)
    out->reason = "the two fields are not side by side like a pair of lungs";
  else if (out->quality < 0.6)
    out->reason = "the network is not sure of the mask (quality below 0.6)";
  out->status = out->reason ? CXR_LUNGS_IMPLAUSIBLE : CXR_LUNGS_OK;
  out->cardiothoracic_ratio = cxr_lungs_cardiothoracic_ratio (out);
  out->elapsed_ms = (g_get_monotonic_time () - t0) / 1000.0;
  g_free (lung[0]);
  g_free (lung[1]);
  return out;
}

/* Separable box filter of radius r over a w x h float map, edges clamped
 * (twice makes a tent: enough to smooth a region's edge). Each output is
 * the double sum of its 2 r + 1 inputs in order, divided; the sums of a
 * row (a row of sums, for the columns) are carried side by side, so the
 * adds do not wait on one another and the compiler vectorises them. */
static void
box (float *m, int w, int h, int r)
{
  g_autofree double *acc = g_new (double, w);
  g_autofree float *pad = g_new (float, w + 2 * r);
  g_autofree float *t = g_new (float, (gsize) w * h);
  double n = 2 * r + 1;
  for (int y = 0; y < h; y++)
    {
      float *row = m + (gsize) y * w;
      /* the row with its ends repeated r times: pad[x + r + k] is
       * row[CLAMP (x + k, 0, w - 1)] */
      for (int x = 0; x < w + 2 * r; x++)
        pad[x] = row[CLAMP (x - r, 0, w - 1)];
      for (int x = 0; x < w; x++)
        acc[x] = 0;
      for (int k = 0; k <= 2 * r; k++)
        for (int x = 0; x < w; x++)
          acc[x] += pad[x + k];
      for (int x = 0; x < w; x++)
        row[x] = (float) (acc[x] / n);
    }
  for (int y = 0; y < h; y++)
    {
      for (int x = 0; x < w; x++)
        acc[x] = 0;
      for (int k = -r; k <= r; k++)
        {
          const float *src = m + (gsize) CLAMP (y + k, 0, h - 1) * w;
          for (int x = 0; x < w; x++)
            acc[x] += src[x];
        }
      for (int x = 0; x < w; x++)
        t[(gsize) y * w + x] = (float) (acc[x] / n);
    }
  memcpy (m, t, sizeof (float) * w * h);
}

/**
 * cxr_lungs_thorax_weight:
 * Where two films of a chest should be compared, from its lung fields:
 * the lungs, the mediastinum and heart between them (each row filled
 * between its leftmost and rightmost lung pixel), the diaphragm's domes
 * below them (the rows extended down by 10 % of the film's height and up
 * by 3 %), with a margin of 4 % of the film's width for the chest wall,
 * and a soft edge; not the shoulders, arms, neck, markers or collimation.
 *
 * Returns: (transfer full): a 128 x 128 map in 0..1 over the film's whole
 * extent (cxr_register_film_new_weighted takes it), or %NULL when the
 * lung fields are not 'ok'.
 */
CxrImage *
cxr_lungs_thorax_weight (const CxrLungFields *l)
{
  if (l->status != CXR_LUNGS_OK)
    return NULL;
  const int G = 128;
  CxrImage *w = cxr_image_new (G, G);
  /* lung share of each cell */
  g_autofree float *cell = g_new0 (float, (gsize) G * G);
  /* cell gx's columns are xs[gx] .. xs[gx + 1] - 1 (x * G / width rounds
   * down); each row's lung pixels counted per cell, branch-free, and
   * added at once (whole numbers: the same float as adding 1 each time) */
  int xs[129];
  for (int c = 0, x = 0; c <= G; c++)
    {
      while (x < l->width && (gint64) x * G / l->width < c)
        x++;
      xs[c] = x;
    }
  for (int y = 0; y < l->height; y++)
    {
      float *crow = cell + (gsize) ((gint64) y * G / l->height) * G;
      const guint8 *row = l->mask + (gsize) y * l->width;
      for (int c = 0; c < G; c++)
        {
          int k = 0;
          for (int x = xs[c]; x < xs[c + 1]; x++)
            k += row[x] != 0;
          crow[c] += (float) k;
        }
    }
  double per = ((double) l->width / G) * ((double) l->height / G);
  int lo[128], hi[128], top = G, bottom = -1;
  for (int y = 0; y < G; y++)
    {
      lo[y] = G;
      hi[y] = -1;
      for (int x = 0; x < G; x++)
        if (cell[(gsize) y * G + x] > 0.5 * per)
          {
            lo[y] = MIN (lo[y], x);
            hi[y] = MAX (hi[y], x);
          }
      if (hi[y] >= 0)
        {
          top = MIN (top, y);
          bottom = MAX (bottom, y);
        }
    }
  if (bottom < 0)
    {
      cxr_image_free (w);
      return NULL;
    }
  /* rows without lung inside the span take the nearest row's extent */
  for (int y = top + 1; y <= bottom; y++)
    if (hi[y] < 0)
      {
        lo[y] = lo[y - 1];
        hi[y] = hi[y - 1];
      }
  int down = (int) lround (0.10 * G), up = (int) lround (0.03 * G);
  for (int y = MAX (0, top - up); y <= MIN (G - 1, bottom + down); y++)
    {
      int src = CLAMP (y, top, bottom);
      for (int x = lo[src]; x <= hi[src]; x++)
        w->data[(gsize) y * G + x] = 1.f;
    }
  /* margin: spread, cut, then a soft edge */
  int margin = (int) lround (0.04 * G);
  box (w->data, G, G, margin);
  for (gsize i = 0; i < (gsize) G * G; i++)
    w->data[i] = w->data[i] > 0.02f ? 1.f : 0.f;
  box (w->data, G, G, 2);
  box (w->data, G, G, 2);
  return w;
}
