/* SPDX-License-Identifier: MIT
 *
 * CNN inference in C for the DenseNet family (Huang et al., CVPR 2017), the
 * architecture of CheXNet (Rajpurkar et al. 2017) and torchxrayvision.
 * An architecture is a row of the table below (stem width, growth rate,
 * bottleneck size, layers per block); tensor names follow torchvision
 * (features.conv0.weight, features.denseblock1.denselayer1.norm1.weight,
 * ..., classifier.weight), and every tensor's shape is checked against the
 * row before use. Unknown or missing tensors are errors.
 *
 * Batch norm after a convolution (norm0 after conv0, norm2 after conv1)
 * is folded into that convolution's weights and bias at load time; batch
 * norm before a convolution (DenseNet is pre-activation: norm1, the
 * transitions' norm, norm5) becomes a per-channel scale and shift fused
 * with the ReLU that follows it (the layers: nn.c). The dense block's
 * concatenation costs nothing: each block owns one buffer of its final
 * width and every layer writes its new channels after the previous ones. All activations live in
 * one arena sized from the architecture before the first layer runs.
 *
 * Outputs: the embedding is the global average of the final rectified
 * features; probabilities are sigmoid(classifier(embedding)); the class
 * activation map of class c is sum_k w_ck F_k(x, y) + b_c (Zhou et al.,
 * CVPR 2016), whose spatial mean is the class logit.
 */
#include <cblas.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "cxr/error.h"
#include "cxr/model.h"
#include "cxr/safetensors.h"
#include "nn-private.h"
#include "sgemm-private.h"
#include "vector-private.h"

typedef struct {
  const char *name;
  int in_ch;
  int stem; /* features after conv0 */
  int growth;
  int bn_size;
  int blocks[4];
} Arch;

static const Arch archs[] = {
  { "densenet121", 3, 64, 32, 4, { 6, 12, 24, 16 } },
  /* cxrtrack's default model (models/MODEL_CARD.md): gray input, narrow */
  { "cxr-densenet-small", 1, 32, 16, 4, { 3, 6, 12, 8 } },
};

typedef struct {
  CxrAffine bn1;
  CxrConv conv1; /* norm2 folded in */
  CxrConv conv2;
} Layer;

typedef struct {
  int n;
  Layer *layers;
  int c_in, c_out; /* channels entering and leaving the block */
  gboolean has_trans;
  CxrAffine tbn;
  CxrConv tconv;
} Block;

struct _CxrModel {
  Arch arch;
  char *name, *sha256, *metadata_json;
  int input_size;
  float mean[3], std[3];
  GPtrArray *classes;
  CxrConv conv0; /* norm0 folded in */
  Block blocks[4];
  CxrAffine norm5;
  int dim;
  float *fc_w, *fc_b; /* n_classes x dim, n_classes */
};

const char *
cxr_model_name (const CxrModel *m)
{
  return m->name;
}

const char *
cxr_model_architecture (const CxrModel *m)
{
  return m->arch.name;
}

const char *
cxr_model_sha256 (const CxrModel *m)
{
  return m->sha256;
}

int
cxr_model_input_size (const CxrModel *m)
{
  return m->input_size;
}

int
cxr_model_input_channels (const CxrModel *m)
{
  return m->arch.in_ch;
}

int
cxr_model_n_classes (const CxrModel *m)
{
  return (int) m->classes->len;
}

int
cxr_model_embedding_dim (const CxrModel *m)
{
  return m->dim;
}

const char *
cxr_model_class_name (const CxrModel *m, int i)
{
  g_return_val_if_fail (i >= 0 && (guint) i < m->classes->len, NULL);
  return m->classes->pdata[i];
}

char *
cxr_model_metadata_json (const CxrModel *m)
{
  return g_strdup (m->metadata_json);
}

void
cxr_model_free (CxrModel *m)
{
  if (m == NULL)
    return;
  cxr__conv_clear (&m->conv0);
  for (int b = 0; b < 4; b++)
    {
      for (int l = 0; l < m->blocks[b].n; l++)
        {
          cxr__affine_clear (&m->blocks[b].layers[l].bn1);
          cxr__conv_clear (&m->blocks[b].layers[l].conv1);
          cxr__conv_clear (&m->blocks[b].layers[l].conv2);
        }
      g_free (m->blocks[b].layers);
      cxr__affine_clear (&m->blocks[b].tbn);
      cxr__conv_clear (&m->blocks[b].tconv);
    }
  cxr__affine_clear (&m->norm5);
  g_free (m->fc_w);
  g_free (m->fc_b);
  if (m->classes)
    g_ptr_array_unref (m->classes);
  g_free (m->name);
  g_free (m->sha256);
  g_free (m->metadata_json);
  g_free (m);
}

/* --- loading -------------------------------------------------------------- */

static gboolean
parse_floats (const char *text, float *out, int n)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  if ((int) g_strv_length (parts) != n)
    return FALSE;
  for (int i = 0; i < n; i++)
    {
      char *end;
      out[i] = (float) g_ascii_strtod (g_strstrip (parts[i]), &end);
      if (*end != '\0' || !isfinite (out[i]))
        return FALSE;
    }
  return TRUE;
}

static gboolean
load_metadata (CxrModel *m, CxrSafetensors *st, const char *path, GError **error)
{
  const char *arch = cxr_safetensors_metadata (st, "architecture");
  const char *size = cxr_safetensors_metadata (st, "input_size");
  const char *classes = cxr_safetensors_metadata (st, "classes");
  if (arch == NULL || size == NULL || classes == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: __metadata__ needs architecture, input_size and classes", path);
      return FALSE;
    }
  const Arch *a = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (archs); i++)
    if (g_str_equal (archs[i].name, arch))
      a = &archs[i];
  if (a == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: unknown architecture '%s' (densenet121, cxr-densenet-small)", path, arch);
      return FALSE;
    }
  m->arch = *a;
  char *end;
  gint64 s = g_ascii_strtoll (size, &end, 10);
  if (*end != '\0' || s < 32 || s > 1024)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL, "%s: input_size '%s' is not 32..1024", path,
                   size);
      return FALSE;
    }
  m->input_size = (int) s;
  m->classes = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) names = g_strsplit (classes, "|", -1);
  for (char **n = names; *n; n++)
    if (**n)
      g_ptr_array_add (m->classes, g_strdup (g_strstrip (*n)));
  if (m->classes->len == 0 || m->classes->len > 1000)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL, "%s: classes must name 1..1000 findings",
                   path);
      return FALSE;
    }
  /* one name per output: a name twice would merge two findings' rows */
  for (guint i = 0; i < m->classes->len; i++)
    for (guint j = 0; j < i; j++)
      if (g_str_equal (m->classes->pdata[i], m->classes->pdata[j]))
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                       "%s: classes name '%s' twice (outputs %u and %u)", path,
                       (const char *) m->classes->pdata[i], j + 1, i + 1);
          return FALSE;
        }
  for (int c = 0; c < 3; c++)
    {
      m->mean[c] = 0;
      m->std[c] = 1;
    }
  const char *mean = cxr_safetensors_metadata (st, "input_mean");
  const char *sd = cxr_safetensors_metadata (st, "input_std");
  if ((mean && !parse_floats (mean, m->mean, a->in_ch))
      || (sd && !parse_floats (sd, m->std, a->in_ch)))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: input_mean and input_std need %d comma-separated numbers", path, a->in_ch);
      return FALSE;
    }
  for (int c = 0; c < a->in_ch; c++)
    if (!(m->std[c] > 0))
      {
        g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL, "%s: input_std must be positive", path);
        return FALSE;
      }
  const char *resize = cxr_safetensors_metadata (st, "resize");
  if (resize && !g_str_equal (resize, "area"))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL, "%s: resize '%s' is not supported (area)",
                   path, resize);
      return FALSE;
    }
  const char *name = cxr_safetensors_metadata (st, "name");
  m->name = g_strdup (name ? name : arch);
  /* The metadata as JSON, for the models table. */
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  const char *keys[] = { "name",   "architecture", "input_size", "input_mean", "input_std",
                         "resize", "version",      "classes",    "source" };
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      const char *v = cxr_safetensors_metadata (st, keys[i]);
      if (v)
        {
          json_builder_set_member_name (b, keys[i]);
          json_builder_add_string_value (b, v);
        }
    }
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  m->metadata_json = json_generator_to_data (gen, NULL);
  return TRUE;
}

/**
 * cxr_model_load:
 * Loads and validates a model (CXR_ERROR_MODEL for anything wrong with
 * the file, naming the file and tensor).
 *
 * Returns: (transfer full): the model, or %NULL.
 */
CxrModel *
cxr_model_load (const char *path, GError **error)
{
  g_autoptr (CxrSafetensors) st = cxr_safetensors_open (path, error);
  if (st == NULL)
    return NULL;
  g_autoptr (CxrModel) m = g_new0 (CxrModel, 1);
  if (!load_metadata (m, st, path, error))
    return NULL;
  m->sha256 = g_strdup (cxr_safetensors_sha256 (st));
  CxrTensorLoader ld = { st, path, g_hash_table_new (g_str_hash, g_str_equal) };
  const Arch *a = &m->arch;
  gboolean ok = FALSE;
  CxrAffine bn = { 0 };

  if (!cxr__take_conv (&ld, "features.conv0.weight", a->in_ch, a->stem, 7, 2, 3, &m->conv0, error)
      || !cxr__take_bn (&ld, "features.norm0", a->stem, &bn, error))
    goto out;
  cxr__fold (&m->conv0, &bn);
  cxr__affine_clear (&bn);
  int c = a->stem, mid = a->bn_size * a->growth;
  for (int b = 0; b < 4; b++)
    {
      Block *blk = &m->blocks[b];
      blk->n = a->blocks[b];
      blk->c_in = c;
      blk->layers = g_new0 (Layer, blk->n);
      for (int l = 0; l < blk->n; l++)
        {
          Layer *ly = &blk->layers[l];
          g_autofree char *p = g_strdup_printf ("features.denseblock%d.denselayer%d", b + 1, l + 1);
          g_autofree char *n1 = g_strconcat (p, ".norm1", NULL);
          g_autofree char *c1 = g_strconcat (p, ".conv1.weight", NULL);
          g_autofree char *n2 = g_strconcat (p, ".norm2", NULL);
          g_autofree char *c2 = g_strconcat (p, ".conv2.weight", NULL);
          if (!cxr__take_bn (&ld, n1, c, &ly->bn1, error)
              || !cxr__take_conv (&ld, c1, c, mid, 1, 1, 0, &ly->conv1, error)
              || !cxr__take_bn (&ld, n2, mid, &bn, error))
            goto out;
          cxr__fold (&ly->conv1, &bn);
          cxr__affine_clear (&bn);
          if (!cxr__take_conv (&ld, c2, mid, a->growth, 3, 1, 1, &ly->conv2, error))
            goto out;
          c += a->growth;
        }
      blk->c_out = c;
      if (b < 3)
        {
          blk->has_trans = TRUE;
          g_autofree char *tn = g_strdup_printf ("features.transition%d.norm", b + 1);
          g_autofree char *tc = g_strdup_printf ("features.transition%d.conv.weight", b + 1);
          if (!cxr__take_bn (&ld, tn, c, &blk->tbn, error)
              || !cxr__take_conv (&ld, tc, c, c / 2, 1, 1, 0, &blk->tconv, error))
            goto out;
          c /= 2;
        }
    }
  if (!cxr__take_bn (&ld, "features.norm5", c, &m->norm5, error))
    goto out;
  m->dim = c;
  gint64 wsh[2] = { m->classes->len, c }, bsh[1] = { m->classes->len };
  m->fc_w = cxr__take (&ld, "classifier.weight", 2, wsh, error);
  m->fc_b = m->fc_w ? cxr__take (&ld, "classifier.bias", 1, bsh, error) : NULL;
  if (m->fc_b == NULL)
    {
      if (m->fc_w && error && *error && strstr ((*error)->message, "want [")
          && strstr ((*error)->message, "classifier.weight"))
        g_prefix_error (error, "(classes in metadata: %u) ", m->classes->len);
      goto out;
    }
  if (g_hash_table_size (ld.used) != cxr_safetensors_n_tensors (st))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: %u tensors that %s does not have (a different architecture?)", path,
                   cxr_safetensors_n_tensors (st) - g_hash_table_size (ld.used), a->name);
      goto out;
    }
  cxr__conv_pack (&m->conv0);
  for (int b = 0; b < 4; b++)
    {
      Block *blk = &m->blocks[b];
      for (int l = 0; l < blk->n; l++)
        {
          cxr__conv_pack (&blk->layers[l].conv1);
          cxr__conv_pack (&blk->layers[l].conv2);
        }
      if (blk->has_trans)
        cxr__conv_pack (&blk->tconv);
    }
  ok = TRUE;
out:
  cxr__affine_clear (&bn);
  g_hash_table_unref (ld.used);
  return ok ? g_steal_pointer (&m) : NULL;
}

/* --- inference ------------------------------------------------------------ */

/* Each thread keeps its largest activation arena for the next film: 29 MB
 * for DenseNet-121 at 224 px, which, allocated afresh per film, costs a
 * page fault per 4 KB every time (10 % of the time on a virtual machine). */
static GPrivate arena_key = G_PRIVATE_INIT (cxr__thread_buffer_free);

/* The stem's max pool, 3x3 / 2, padding 1, of @c channels h x h into
 * o x o: the maxima of 3 columns of each row (into @rows, h x o), then of
 * 3 of those rows; both loops without bounds tests, so they vectorize
 * (MAX is maxps's own rule). The maximum does not depend on the order
 * (ReLU outputs: no NaN, no -0). */
static void
max_pool_3s2 (const float *in, int c, int h, int o, float *rows, float *out)
{
  for (int ch = 0; ch < c; ch++, in += (gsize) h * h, out += (gsize) o * o)
    {
      for (int y = 0; y < h; y++)
        {
          const float *f = in + (gsize) y * h;
          float *r = rows + (gsize) y * o;
          r[0] = h > 1 ? MAX (f[0], f[1]) : f[0];
          int x = 1;
          for (; x < o && 2 * x + 1 < h; x++)
            r[x] = MAX (MAX (f[2 * x - 1], f[2 * x]), f[2 * x + 1]);
          for (; x < o; x++)
            r[x] = MAX (f[2 * x - 1], f[2 * x]);
        }
      for (int y = 0; y < o; y++)
        {
          const float *r0 = rows + (gsize) MAX (2 * y - 1, 0) * o, *r1 = rows + (gsize) 2 * y * o;
          const float *r2 = rows + (gsize) MIN (2 * y + 1, h - 1) * o;
          float *d = out + (gsize) y * o;
          for (int x = 0; x < o; x++)
            d[x] = MAX (MAX (r0[x], r1[x]), r2[x]);
        }
    }
}

/**
 * cxr_model_forward:
 * Thread-safe: any number of threads may run the same model at once.
 */
CxrPrediction *
cxr_model_forward (const CxrModel *m, const float *input)
{
  const Arch *a = &m->arch;
  int s = m->input_size;
  int h0 = (s + 6 - 7) / 2 + 1;  /* conv0 */
  int h1 = (h0 + 2 - 3) / 2 + 1; /* pool0 */
  /* Arena sizes from the architecture. */
  gsize max_block = 0, max_tmp = 0, max_col = (gsize) a->in_ch * 49 * h0 * h0;
  gsize stem = (gsize) a->stem * h0 * h0;
  int hh = h1;
  for (int b = 0; b < 4; b++)
    {
      gsize hw = (gsize) hh * hh;
      max_block = MAX (max_block, (gsize) m->blocks[b].c_out * hw);
      max_tmp = MAX (max_tmp, (gsize) m->blocks[b].c_out * hw);
      max_col = MAX (max_col, (gsize) a->bn_size * a->growth * 9 * hw);
      if (b < 3)
        hh /= 2;
    }
  int hf = hh;
  max_col = MAX (max_col, max_tmp); /* also holds a transition's output */
  gsize mid = (gsize) a->bn_size * a->growth * h1 * h1;
  float *arena = cxr__thread_buffer (&arena_key, stem + 2 * max_block + max_tmp + mid + max_col);
  float *f0 = arena, *blk_a = f0 + stem, *blk_b = blk_a + max_block, *tmp = blk_b + max_block,
        *bott = tmp + max_tmp, *col = bott + mid;

  cxr__conv_forward (&m->conv0, input, s, s, f0, col, TRUE);
  max_pool_3s2 (f0, a->stem, h0, h1, col, blk_a);
  float *cur = blk_a, *next = blk_b;
  hh = h1;
  for (int b = 0; b < 4; b++)
    {
      const Block *blk = &m->blocks[b];
      gsize hw = (gsize) hh * hh;
      int c = blk->c_in;
      for (int l = 0; l < blk->n; l++)
        {
          const Layer *ly = &blk->layers[l];
          cxr__affine_relu (&ly->bn1, cur, hw, tmp);
          cxr__conv_forward (&ly->conv1, tmp, hh, hh, bott, col, TRUE);
          cxr__conv_forward (&ly->conv2, bott, hh, hh, cur + (gsize) c * hw, col, FALSE);
          c += a->growth;
        }
      if (!blk->has_trans)
        break;
      cxr__affine_relu (&blk->tbn, cur, hw, tmp);
      /* a 1x1 convolution needs no im2col: col holds its output */
      cxr__conv_forward (&blk->tconv, tmp, hh, hh, col, NULL, FALSE);
      /* 2x2 average pool into the next block's buffer */
      int co = blk->tconv.co, ho = hh / 2;
      for (int ch = 0; ch < co; ch++)
        for (int y = 0; y < ho; y++)
          for (int x = 0; x < ho; x++)
            {
              const float *p = col + ((gsize) ch * hh + 2 * y) * hh + 2 * x;
              next[((gsize) ch * ho + y) * ho + x] = 0.25f * (p[0] + p[1] + p[hh] + p[hh + 1]);
            }
      float *t = cur;
      cur = next;
      next = t;
      hh = ho;
    }

  CxrPrediction *p = g_new0 (CxrPrediction, 1);
  int nc = (int) m->classes->len;
  gsize hw = (gsize) hf * hf;
  p->dim = m->dim;
  p->n_classes = nc;
  p->map_w = p->map_h = hf;
  p->embedding = g_new (float, m->dim);
  p->probability = g_new (float, nc);
  p->logit = g_new (float, nc);
  p->cam = g_new (float, (gsize) nc * hw);
  p->features = g_new (float, (gsize) m->dim * hw);
  cxr__affine_relu (&m->norm5, cur, hw, p->features);
  memcpy (tmp, p->features, sizeof (float) * m->dim * hw);
  for (int k = 0; k < m->dim; k++)
    {
      double acc = 0;
      for (gsize i = 0; i < hw; i++)
        acc += tmp[k * hw + i];
      p->embedding[k] = (float) (acc / hw);
    }
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, nc, (int) hw, m->dim, 1.0f, m->fc_w,
               m->dim, tmp, (int) hw, 0.0f, p->cam, (int) hw);
  for (int c = 0; c < nc; c++)
    {
      double z = m->fc_b[c];
      for (int k = 0; k < m->dim; k++)
        z += (double) m->fc_w[(gsize) c * m->dim + k] * p->embedding[k];
      p->logit[c] = (float) z;
      p->probability[c] = (float) (1.0 / (1.0 + exp (-z)));
      for (gsize i = 0; i < hw; i++)
        p->cam[c * hw + i] += m->fc_b[c];
    }
  return p;
}

/**
 * cxr_model_preprocess:
 * The film resized to input_size x input_size (area filter), replicated
 * over the model's input channels and normalised with its input_mean and
 * input_std: x_c = (v - mean_c) / std_c, v in [0, 1].
 *
 * Returns: (transfer full): channels * size * size floats.
 */
float *
cxr_model_preprocess (const CxrModel *m, const CxrImage *film)
{
  int s = m->input_size;
  g_autoptr (CxrImage) r = cxr_image_resize (film, s, s);
  gsize n = (gsize) s * s;
  float *x = g_new (float, n * m->arch.in_ch);
  for (int c = 0; c < m->arch.in_ch; c++)
    for (gsize i = 0; i < n; i++)
      x[c * n + i] = (r->data[i] - m->mean[c]) / m->std[c];
  return x;
}

CxrPrediction *
cxr_model_predict (const CxrModel *m, const CxrImage *film)
{
  g_autofree float *x = cxr_model_preprocess (m, film);
  return cxr_model_forward (m, x);
}

void
cxr_prediction_free (CxrPrediction *p)
{
  if (p == NULL)
    return;
  g_free (p->embedding);
  g_free (p->probability);
  g_free (p->logit);
  g_free (p->cam);
  g_free (p->features);
  g_free (p);
}

/**
 * cxr_model_cosine_distance:
 * Of two vectors of @n floats @stride apart (an embedding: 1; a location
 * of a feature map: its height times width).
 *
 * Returns: 1 - a.b / (|a| |b|), or NAN when either vector is zero.
 */
double
cxr_model_cosine_distance (const float *a, const float *b, int n, gsize stride)
{
  return cxr__cosine_distance (a, b, n, stride);
}
