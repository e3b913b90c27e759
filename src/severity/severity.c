/* SPDX-License-Identifier: MIT
 *
 * Brixia zones and their scores (include/cxr/severity.h).
 *
 * Zones. Each lung's rows, from the first to the last row the lung fields
 * hold of it, are cut into equal thirds; in each row a zone spans that
 * lung's outermost mask pixels, so an opacity the segmenter left out of a
 * concave edge is still inside its zone. The definition's lines (the
 * inferior wall of the aortic arch, of the right inferior pulmonary vein)
 * are not found: thirds are what readers fall back to where they cannot be
 * seen, and the method is said with every score. A side without aerated
 * lung (CxrLungFields.airless_side) is drawn as the other lung mirrored
 * about the film's middle, where an opaque hemithorax is.
 *
 * Features, per zone, in this order (cxr_severity_feature_name):
 *   0-2  density: mean, median and 90th percentile of the zone's grey
 *        levels on the film's own scale (its 1st to 99th percentile = 0..1);
 *   3-5  the same against the film's aerated lung (its lung pixels' 5th
 *        percentile = 0, the film's 99th = 1);
 *   6    the spread of the zone's grey levels (film scale);
 *   7    the aerated share: lung-field pixels over the zone's pixels;
 *   8    the zone's share of both lungs' zones (a small zone: volume loss);
 *   9..  the classifier's class activation per finding, then its final
 *        features, averaged over the zone (each feature cell weighted by
 *        how much of the zone it covers);
 *   then features 0-8 and the activations again, averaged over the six
 *        zones: the film's context (a zone of a film sick everywhere is
 *        read differently from the one sick zone of a film).
 * The head is a linear map of the standardised features plus a bias per
 * zone, clamped to 0..3 (tools/train_severity.py fits it, patients
 * grouped; models/SEVERITY_CARD.md).
 */
#include <math.h>
#include <string.h>

#include "cxr/error.h"
#include "cxr/safetensors.h"
#include "cxr/severity.h"

#define N_OWN 9 /* features before the classifier's */
#define BINS  1024

struct _CxrSeverityModel {
  char *name;
  char *sha256;
  char *classifier;
  int n_features;
  float *mean, *scale, *weight; /* n_features */
  float bias[CXR_SEVERITY_ZONES];
};

static const char *const zone_names[CXR_SEVERITY_ZONES] = { "A", "B", "C", "D", "E", "F" };
static const char *const own_names[N_OWN]
    = { "density_mean",      "density_median",      "density_p90",
        "lung_density_mean", "lung_density_median", "lung_density_p90",
        "density_sd",        "aerated_share",       "zone_share" };

const char *
cxr_severity_zone_name (int zone)
{
  return zone >= 0 && zone < CXR_SEVERITY_ZONES ? zone_names[zone] : "?";
}

int
cxr_severity_zone_index (const char *name)
{
  for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
    if (g_strcmp0 (name, zone_names[z]) == 0)
      return z;
  return -1;
}

const char *
cxr_severity_zone_label (const char *name)
{
  static const char *const labels[CXR_SEVERITY_ZONES]
      = { "right upper zone", "right middle zone", "right lower zone",
          "left upper zone",  "left middle zone",  "left lower zone" };
  int z = cxr_severity_zone_index (name);
  return z >= 0 ? labels[z] : "?";
}

const char *
cxr_severity_status_name (CxrSeverityStatus status)
{
  return status == CXR_SEVERITY_OK ? "ok" : "implausible";
}

static int
n_features_of (int n_classes, int dim)
{
  return N_OWN + n_classes + dim + N_OWN + n_classes;
}

static int
n_features_for (const CxrModel *c)
{
  return n_features_of (cxr_model_n_classes (c), cxr_model_embedding_dim (c));
}

char *
cxr_severity_feature_name (const CxrModel *c, int i)
{
  if (i < N_OWN)
    return g_strdup (own_names[i]);
  i -= N_OWN;
  int nc = cxr_model_n_classes (c), dim = cxr_model_embedding_dim (c);
  if (i < nc)
    return g_strdup_printf ("cam_%s", cxr_model_class_name (c, i));
  if (i < nc + dim)
    return g_strdup_printf ("feature_%d", i - nc);
  i -= nc + dim;
  if (i < N_OWN)
    return g_strdup_printf ("film_%s", own_names[i]);
  return g_strdup_printf ("film_cam_%s", cxr_model_class_name (c, i - N_OWN));
}

void
cxr_severity_model_free (CxrSeverityModel *m)
{
  if (m == NULL)
    return;
  g_free (m->name);
  g_free (m->sha256);
  g_free (m->classifier);
  g_free (m->mean);
  g_free (m->scale);
  g_free (m->weight);
  g_free (m);
}

const char *
cxr_severity_model_name (const CxrSeverityModel *m)
{
  return m->name;
}

const char *
cxr_severity_model_sha256 (const CxrSeverityModel *m)
{
  return m->sha256;
}

const char *
cxr_severity_model_classifier (const CxrSeverityModel *m)
{
  return m->classifier;
}

static float *
take_vector (CxrSafetensors *st, const char *path, const char *name, gint64 n, GError **error)
{
  const CxrTensorInfo *t = cxr_safetensors_get (st, name);
  if (t == NULL || t->ndim != 1 || t->shape[0] != n)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: tensor '%s' %s (wanted shape [%" G_GINT64_FORMAT "])", path, name,
                   t ? "has the wrong shape" : "is missing", n);
      return NULL;
    }
  g_autofree float *v = g_new (float, n);
  if (!cxr_safetensors_read_f32 (st, t, v))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL, "%s: tensor '%s' is not float", path, name);
      return NULL;
    }
  for (gint64 i = 0; i < n; i++)
    if (!isfinite (v[i]))
      {
        g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                     "%s: tensor '%s' holds a value that is not finite", path, name);
        return NULL;
      }
  return g_steal_pointer (&v);
}

/**
 * cxr_severity_model_load:
 * Loads a zone-score head (CXR_ERROR_MODEL for anything wrong with the
 * file, naming the file and the tensor or key).
 *
 * Returns: (transfer full): the head, or %NULL.
 */
CxrSeverityModel *
cxr_severity_model_load (const char *path, GError **error)
{
  g_autoptr (CxrSafetensors) st = cxr_safetensors_open (path, error);
  if (st == NULL)
    return NULL;
  const char *arch = cxr_safetensors_metadata (st, "architecture");
  if (arch == NULL || !g_str_equal (arch, "cxr-brixia-ridge"))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: architecture '%s' is not a zone-score head (cxr-brixia-ridge)", path,
                   arch ? arch : "(none)");
      return NULL;
    }
  const char *fs = cxr_safetensors_metadata (st, "feature_set");
  const char *cl = cxr_safetensors_metadata (st, "classifier_sha256");
  const char *nf = cxr_safetensors_metadata (st, "n_features");
  if (fs == NULL || !g_str_equal (fs, "brixia-v1") || cl == NULL || strlen (cl) != 64 || nf == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: __metadata__ needs feature_set brixia-v1, classifier_sha256 (64 hex "
                   "digits) and n_features",
                   path);
      return NULL;
    }
  char *end;
  gint64 n = g_ascii_strtoll (nf, &end, 10);
  if (*end || n <= N_OWN || n > 65536)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL, "%s: n_features '%s' is not %d..65536", path,
                   nf, N_OWN + 1);
      return NULL;
    }
  g_autoptr (CxrSeverityModel) m = g_new0 (CxrSeverityModel, 1);
  m->n_features = (int) n;
  m->classifier = g_ascii_strdown (cl, -1);
  m->sha256 = g_strdup (cxr_safetensors_sha256 (st));
  const char *name = cxr_safetensors_metadata (st, "name");
  m->name = g_strdup (name ? name : "cxr-severity");
  if ((m->mean = take_vector (st, path, "feature_mean", n, error)) == NULL
      || (m->scale = take_vector (st, path, "feature_scale", n, error)) == NULL
      || (m->weight = take_vector (st, path, "weight", n, error)) == NULL)
    return NULL;
  g_autofree float *bias = take_vector (st, path, "zone_bias", CXR_SEVERITY_ZONES, error);
  if (bias == NULL)
    return NULL;
  memcpy (m->bias, bias, sizeof m->bias);
  for (gint64 i = 0; i < n; i++)
    if (!(m->scale[i] > 0))
      {
        g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                     "%s: feature_scale[%" G_GINT64_FORMAT "] is not positive", path, i);
        return NULL;
      }
  if (cxr_safetensors_n_tensors (st) != 4)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "%s: %u tensors where a cxr-brixia-ridge head has 4", path,
                   cxr_safetensors_n_tensors (st));
      return NULL;
    }
  return g_steal_pointer (&m);
}

/* FALSE (CXR_ERROR_MODEL) unless @classifier is the one whose features the
 * head was fitted on. */
gboolean
cxr_severity_model_check (const CxrSeverityModel *m, const CxrModel *classifier, GError **error)
{
  if (g_str_equal (m->classifier, cxr_model_sha256 (classifier))
      && m->n_features == n_features_for (classifier))
    return TRUE;
  g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
               "the zone-score head %s reads the features of classifier %.12s, not of %s (%.12s)",
               m->name, m->classifier, cxr_model_name (classifier), cxr_model_sha256 (classifier));
  return FALSE;
}

void
cxr_severity_free (CxrSeverity *s)
{
  if (s == NULL)
    return;
  g_free (s->features);
  g_free (s);
}

/* The grey level below which a share @q of histogram @h's @n values lie. */
static double
quantile (const guint32 *h, guint64 n, double q)
{
  if (n == 0)
    return NAN;
  guint64 want = (guint64) (q * (n - 1)), acc = 0;
  for (int b = 0; b < BINS; b++)
    if ((acc += h[b]) > want)
      return (b + 0.5) / BINS;
  return 1.0;
}

static int
bin_of (float v)
{
  int b = (int) (v * BINS);
  return b < 0 ? 0 : b >= BINS ? BINS - 1 : b;
}

/* One side's row spans: lo[y] > hi[y] where the side has no pixel. */
typedef struct {
  int *lo, *hi;
  int top, bottom; /* rows; top > bottom: no pixel */
  guint64 n;
} Side;

/* Both sides' row spans in one pass over the mask (label 1 and 2). */
static void
sides_scan (const CxrLungFields *l, Side side[2])
{
  int w = l->width;
  for (int k = 0; k < 2; k++)
    {
      side[k].top = l->height;
      side[k].bottom = -1;
      side[k].n = 0;
    }
  for (int y = 0; y < l->height; y++)
    {
      const guint8 *row = l->mask + (gsize) y * w;
      for (int k = 0; k < 2; k++)
        {
          side[k].lo[y] = w;
          side[k].hi[y] = -1;
        }
      for (int x = 0; x < w; x++)
        if (row[x] == 1 || row[x] == 2)
          {
            Side *s = &side[row[x] - 1];
            s->lo[y] = MIN (s->lo[y], x);
            s->hi[y] = x;
            s->n++;
          }
      for (int k = 0; k < 2; k++)
        if (side[k].hi[y] >= 0)
          {
            side[k].top = MIN (side[k].top, y);
            side[k].bottom = y;
          }
    }
}

static void
side_mirror (const Side *from, Side *to, int w, int h)
{
  for (int y = 0; y < h; y++)
    {
      to->lo[y] = from->hi[y] >= 0 ? w - 1 - from->hi[y] : w;
      to->hi[y] = from->hi[y] >= 0 ? w - 1 - from->lo[y] : -1;
    }
  to->top = from->top;
  to->bottom = from->bottom;
}

/* The midline: halfway between the two lungs' medial edges, averaged
 * over the rows that hold both; -1 where no row does. */
static double
midline (const Side *r, const Side *l, int h)
{
  double sum = 0;
  int n = 0;
  for (int y = 0; y < h; y++)
    if (r->hi[y] >= 0 && l->hi[y] >= 0 && r->hi[y] < l->lo[y])
      {
        sum += 0.5 * (r->hi[y] + l->lo[y]);
        n++;
      }
  return n ? sum / n : -1;
}

/* Both lungs as the thorax holds them, not only their aerated part: an
 * opaque base or lateral rim that the lung fields leave out is lung a
 * reader scores. Each side spans the rows of both; in a row where a side
 * has no lung field, it takes the other side's span mirrored about the
 * midline, and its lateral edge reaches at least the mirrored lateral
 * edge (the medial edges stay: the heart is not mirrored onto the right
 * lung, nor the right lung's mediastinum onto the left). */
static void
sides_complete (Side *side, int w, int h, double mid)
{
  Side *r = &side[0], *l = &side[1];
  int top = MIN (r->top, l->top), bottom = MAX (r->bottom, l->bottom);
  g_autofree int *rlo = g_memdup2 (r->lo, sizeof (int) * h),
                 *rhi = g_memdup2 (r->hi, sizeof (int) * h);
  for (int y = top; y <= bottom; y++)
    {
      /* the other side's span mirrored: image x -> 2 mid - x */
      int mlo = l->hi[y] >= 0 ? (int) lround (2 * mid - l->hi[y]) : w;
      int mhi = l->hi[y] >= 0 ? (int) lround (2 * mid - l->lo[y]) : -1;
      int nlo = rhi[y] >= 0 ? (int) lround (2 * mid - rhi[y]) : w;
      int nhi = rhi[y] >= 0 ? (int) lround (2 * mid - rlo[y]) : -1;
      if (r->hi[y] < 0)
        {
          r->lo[y] = mlo;
          r->hi[y] = mhi;
        }
      else if (mhi >= 0)
        r->lo[y] = MIN (r->lo[y], mlo);
      if (l->hi[y] < 0)
        {
          l->lo[y] = nlo;
          l->hi[y] = nhi;
        }
      else if (nhi >= 0)
        l->hi[y] = MAX (l->hi[y], nhi);
      r->lo[y] = CLAMP (r->lo[y], 0, w - 1);
      r->hi[y] = CLAMP (r->hi[y], -1, w - 1);
      l->lo[y] = CLAMP (l->lo[y], 0, w - 1);
      l->hi[y] = CLAMP (l->hi[y], -1, w - 1);
    }
  r->top = l->top = top;
  r->bottom = l->bottom = bottom;
}

static void
side_fixed (Side *s, int w, int h, int x0, int x1)
{
  s->top = (int) (0.12 * h);
  s->bottom = (int) (0.85 * h);
  for (int y = 0; y < h; y++)
    {
      gboolean in = y >= s->top && y <= s->bottom;
      s->lo[y] = in ? x0 : w;
      s->hi[y] = in ? x1 : -1;
    }
}

/* Histograms and cell weights of one zone, then its features. */
static void
zone_features (const CxrImage *film, const CxrLungFields *l, const Side *s, guint8 label, int y0,
               int y1, int step, const CxrPrediction *p, const double scale[4], float *f,
               double *area, double *cell_w)
{
  int w = film->width, h = film->height;
  g_autofree guint32 *hist = g_new0 (guint32, BINS);
  guint64 n = 0, aerated = 0;
  double sum = 0, sum2 = 0;
  int mw = p->map_w, mh = p->map_h;
  memset (cell_w, 0, sizeof (double) * mw * mh);
  for (int y = y0; y <= y1; y += step)
    {
      if (s->hi[y] < s->lo[y])
        continue;
      const float *row = film->data + (gsize) y * w;
      const guint8 *mrow = l ? l->mask + (gsize) y * w : NULL;
      int cy = (int) ((gint64) y * mh / h);
      for (int x = s->lo[y]; x <= s->hi[y]; x += step)
        {
          float v = row[x];
          hist[bin_of (v)]++;
          sum += v;
          sum2 += (double) v * v;
          n++;
          aerated += mrow && mrow[x] == label;
          cell_w[cy * mw + (int) ((gint64) x * mw / w)] += 1;
        }
    }
  *area = (double) n * step * step;
  if (n == 0)
    {
      memset (f, 0, sizeof (float) * (N_OWN + p->n_classes + p->dim));
      return;
    }
  double mean = sum / n, sd = sqrt (MAX (0.0, sum2 / n - mean * mean));
  double q50 = quantile (hist, n, 0.5), q90 = quantile (hist, n, 0.9);
  /* scale: film lo, film span, lung lo, lung span */
  f[0] = (float) ((mean - scale[0]) / scale[1]);
  f[1] = (float) ((q50 - scale[0]) / scale[1]);
  f[2] = (float) ((q90 - scale[0]) / scale[1]);
  f[3] = (float) ((mean - scale[2]) / scale[3]);
  f[4] = (float) ((q50 - scale[2]) / scale[3]);
  f[5] = (float) ((q90 - scale[2]) / scale[3]);
  f[6] = (float) (sd / scale[1]);
  f[7] = (float) ((double) aerated / n);
  f[8] = 0; /* filled once every zone's area is known */
  int hw = mw * mh;
  for (int k = 0; k < p->n_classes; k++)
    {
      double a = 0;
      for (int c = 0; c < hw; c++)
        a += cell_w[c] * p->cam[(gsize) k * hw + c];
      f[N_OWN + k] = (float) (a / n);
    }
  for (int k = 0; k < p->dim; k++)
    {
      double a = 0;
      for (int c = 0; c < hw; c++)
        a += cell_w[c] * p->features[(gsize) k * hw + c];
      f[N_OWN + p->n_classes + k] = (float) (a / n);
    }
}

/* The film's grey-level scale: its 1st and 99th percentiles, and the 5th
 * percentile of its lung-field pixels (the film's 1st where it has none). */
static void
film_scale (const CxrImage *film, const CxrLungFields *l, int step, double scale[4])
{
  g_autofree guint32 *all = g_new0 (guint32, BINS);
  g_autofree guint32 *lung = g_new0 (guint32, BINS);
  guint64 n = 0, nl = 0;
  for (int y = 0; y < film->height; y += step)
    for (int x = 0; x < film->width; x += step)
      {
        gsize i = (gsize) y * film->width + x;
        int b = bin_of (film->data[i]);
        all[b]++;
        n++;
        if (l && l->mask[i])
          {
            lung[b]++;
            nl++;
          }
      }
  double lo = quantile (all, n, 0.01), hi = quantile (all, n, 0.99);
  double llo = nl ? quantile (lung, nl, 0.05) : lo;
  scale[0] = lo;
  scale[1] = MAX (hi - lo, 1.0 / BINS);
  scale[2] = llo;
  scale[3] = MAX (hi - llo, 1.0 / BINS);
}

/**
 * cxr_severity_measure:
 * @model: (nullable): the zone-score head; %NULL for the zones and their
 *   features alone (scores NAN)
 * @lungs: (nullable): the film's lung fields (at the film's size)
 * @prediction: the classifier's output on @film
 *
 * The six zones of @film, their features and, with a head, their scores.
 * Zones that cannot be drawn from the lung fields (none, or implausible
 * without an airless side) are fractions of the film and the status is
 * implausible, with the reason.
 *
 * Returns: (transfer full): the measure, or %NULL (@error set) when the
 * inputs do not belong together.
 */
CxrSeverity *
cxr_severity_measure (const CxrSeverityModel *model, const CxrImage *film,
                      const CxrLungFields *lungs, const CxrPrediction *prediction, GError **error)
{
  const CxrPrediction *p = prediction;
  gint64 t0 = g_get_monotonic_time ();
  int w = film->width, h = film->height;
  if (lungs && (lungs->width != w || lungs->height != h))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "lung fields of %dx%d for a film of %dx%d", lungs->width, lungs->height, w, h);
      return NULL;
    }
  int nf = n_features_of (p->n_classes, p->dim), ctx = N_OWN + p->n_classes + p->dim;
  if (model && model->n_features != nf)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL,
                   "the zone-score head %s reads %d features per zone, the classifier gives %d",
                   model->name, model->n_features, nf);
      return NULL;
    }
  g_autoptr (CxrSeverity) s = g_new0 (CxrSeverity, 1);
  s->n_features = nf;
  s->features = g_new0 (float, (gsize) CXR_SEVERITY_ZONES * nf);
  s->method = "thirds";
  g_autofree int *spans = g_new (int, (gsize) 4 * h);
  Side side[2] = { { spans, spans + h, 0, 0, 0 }, { spans + 2 * h, spans + 3 * h, 0, 0, 0 } };
  /* a side smaller than this is not drawn from the mask */
  guint64 min_px = (guint64) w * h / 200;
  gboolean have[2] = { FALSE, FALSE };
  if (lungs)
    {
      sides_scan (lungs, side);
      for (int k = 0; k < 2; k++)
        have[k] = side[k].n >= min_px;
    }
  const CxrLungFields *mask_of = lungs;
  double mid = have[0] && have[1] ? midline (&side[0], &side[1], h) : -1;
  if (lungs && lungs->status == CXR_LUNGS_OK && have[0] && have[1] && mid > 0)
    sides_complete (side, w, h, mid);
  else if (lungs && lungs->airless_side && (have[0] != have[1]))
    {
      int missing = have[0] ? 1 : 0;
      side_mirror (&side[1 - missing], &side[missing], w, h);
      s->method = "thirds-mirrored";
    }
  else
    {
      s->status = CXR_SEVERITY_IMPLAUSIBLE;
      s->reason = lungs ? "the lung fields are implausible: zones are fixed fractions of the film"
                        : "no lung fields: zones are fixed fractions of the film";
      if (!(lungs && have[0] && have[1]))
        {
          side_fixed (&side[0], w, h, (int) (0.12 * w), (int) (0.48 * w));
          side_fixed (&side[1], w, h, (int) (0.52 * w), (int) (0.88 * w));
          s->method = "fixed";
          mask_of = NULL;
        }
    }
  double scale[4];
  /* every pixel of a film up to 767 px, every 2nd of each row and column
   * up to 1279 px ...: the grey levels' statistics, not their detail */
  int step = MAX (1, (MAX (w, h) + 256) / 512);
  film_scale (film, mask_of, step, scale);
  g_autofree double *cell_w = g_new (double, (gsize) p->map_w * p->map_h);
  double total = 0;
  for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
    {
      const Side *sd = &side[z / 3];
      int band = z % 3, rows = sd->bottom - sd->top + 1;
      s->y0[z] = sd->top + band * rows / 3;
      s->y1[z] = sd->top + (band + 1) * rows / 3 - 1;
      zone_features (film, mask_of, sd, (guint8) (z / 3 + 1), s->y0[z], s->y1[z], step, p, scale,
                     s->features + (gsize) z * nf, &s->area_px[z], cell_w);
      total += s->area_px[z];
    }
  for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
    s->features[(gsize) z * nf + 8] = (float) (total > 0 ? s->area_px[z] / total : 0);
  for (int i = 0; i < N_OWN + p->n_classes; i++)
    {
      double a = 0;
      for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
        a += s->features[(gsize) z * nf + i];
      for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
        s->features[(gsize) z * nf + ctx + i] = (float) (a / CXR_SEVERITY_ZONES);
    }
  s->global = NAN;
  for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
    s->score[z] = NAN;
  s->elapsed_ms = (g_get_monotonic_time () - t0) / 1000.0;
  if (model == NULL)
    return g_steal_pointer (&s);
  s->global = 0;
  for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
    {
      const float *f = s->features + (gsize) z * nf;
      double a = model->bias[z];
      for (int i = 0; i < nf; i++)
        a += model->weight[i] * ((f[i] - model->mean[i]) / model->scale[i]);
      s->score[z] = CLAMP (a, 0.0, 3.0);
      s->global += s->score[z];
    }
  s->elapsed_ms = (g_get_monotonic_time () - t0) / 1000.0;
  return g_steal_pointer (&s);
}
