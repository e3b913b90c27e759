/* SPDX-License-Identifier: MIT
 *
 * Test-retest limits, derived rather than guessed: films from the store,
 * re-posed and re-exposed copies of each (rotation +-5 degrees, shift
 * +-20 px, scale +-5 %, gain and gamma +-10 %), and per signal the 95th
 * percentile of |signal(copy) - signal(film)|. For the trend score the
 * copy is registered and compared with the film like any visit. A signal
 * that the copies do not move at all would get a limit of 0; each has a
 * floor at its resolution instead (signal.c).
 *
 * This is a small pipeline of its own (warp, predict, register, diff),
 * which is why it lives apart from the flags it serves (progression.c).
 */
#include <math.h>
#include <string.h>

#include "cxr/diff.h"
#include "cxr/error.h"
#include "cxr/lungs.h"
#include "cxr/progression.h"
#include "cxr/register.h"
#include "cxr/signal.h"
#include "store-private.h"
#include "util-private.h"

#define CALIB_METHOD                                                                               \
  "reposed-copies/2 (+-5 deg, +-20 px, +-5 % scale, +-10 % gain and gamma; p95, floored)"

static double
p95 (GArray *v)
{
  if (v->len == 0)
    return NAN;
  g_array_sort (v, cxr__cmp_double);
  double pos = 0.95 * (v->len - 1);
  guint i = (guint) floor (pos);
  double f = pos - i;
  double a = g_array_index (v, double, i), b = g_array_index (v, double, MIN (i + 1, v->len - 1));
  return a + f * (b - a);
}

/* A re-posed, re-exposed copy of @film. */
static CxrImage *
repose (const CxrImage *film, GRand *rng)
{
  double px = MAX (film->width, film->height) / 1024.0;
  CxrRegistration pose = { 0 };
  pose.scale = g_rand_double_range (rng, 0.95, 1.05);
  pose.angle_deg = g_rand_double_range (rng, -5, 5);
  pose.dx_px = g_rand_double_range (rng, -20, 20) * px;
  pose.dy_px = g_rand_double_range (rng, -20, 20) * px;
  CxrImage *copy = cxr_register_warp (film, &pose, film->width, film->height);
  double gain = g_rand_double_range (rng, 0.9, 1.1), gamma = g_rand_double_range (rng, 0.9, 1.1);
  for (gsize i = 0; i < (gsize) copy->width * copy->height; i++)
    copy->data[i] = (float) CLAMP (gain * pow (CLAMP (copy->data[i], 0.f, 1.f), gamma), 0.0, 1.0);
  return copy;
}

/* |signal(copy) - signal(film)| of every signal (@signals' order) over
 * @copies copies of film @f, appended to @diffs. */
/* Zone @zone's score (-1: the global), or NAN where the zones are not
 * plausible. */
static double
severity_value (const CxrSeverity *s, int zone)
{
  if (s == NULL || s->status != CXR_SEVERITY_OK)
    return NAN;
  return zone < 0 ? s->global : s->score[zone];
}

static int
zone_index (const char *name)
{
  for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
    if (g_str_equal (name, cxr_severity_zone_name (z)))
      return z;
  return -1;
}

static void
measure_film (const CxrFilmRow *f, const CxrImageLimits *limits, const CxrModel *model,
              const CxrLungModel *lung_model, const CxrSeverityModel *severity,
              const GPtrArray *signals, int copies, GRand *rng, GArray **diffs)
{
  /* a film changed since ingest (or unreadable) is not used */
  g_autoptr (CxrImage) film = cxr_image_load_checked (f->path, f->sha256, limits, NULL, NULL);
  if (film == NULL)
    return;
  g_autoptr (CxrPrediction) pf = cxr_model_predict (model, film);
  g_autoptr (CxrLungFields) lf = lung_model ? cxr_lungs_segment (lung_model, film, NULL) : NULL;
  g_autoptr (CxrSeverity) sf
      = severity ? cxr_severity_measure (severity, film, lf, pf, NULL) : NULL;
  for (int k = 0; k < copies; k++)
    {
      g_autoptr (CxrImage) copy = repose (film, rng);
      g_autoptr (CxrPrediction) pc = cxr_model_predict (model, copy);
      g_autoptr (CxrLungFields) lc = lf ? cxr_lungs_segment (lung_model, copy, NULL) : NULL;
      g_autoptr (CxrSeverity) sc = sf ? cxr_severity_measure (severity, copy, lc, pc, NULL) : NULL;
      gboolean lungs_ok = lf && lc && lf->status == CXR_LUNGS_OK && lc->status == CXR_LUNGS_OK;
      CxrRegistration r;
      CxrRegisterOptions ro;
      CxrDiffOptions dop;
      CxrDiff d;
      gboolean compared = FALSE;
      for (guint s = 0; s < signals->len; s++)
        {
          const CxrSignal *sig = signals->pdata[s];
          double v = NAN;
          switch (sig->kind)
            {
            case CXR_SIGNAL_EMBEDDING_DISTANCE:
              v = cxr_model_cosine_distance (pf->embedding, pc->embedding, pf->dim, 1);
              break;
            case CXR_SIGNAL_PROBABILITY:
              for (int c = 0; c < pf->n_classes; c++)
                if (g_str_equal (cxr_model_class_name (model, c), sig->finding))
                  v = fabs (pc->probability[c] - pf->probability[c]);
              break;
            case CXR_SIGNAL_LUNG_AREA:
              if (lungs_ok)
                {
                  gboolean right = g_str_equal (sig->finding, "right");
                  double a = right ? lf->right_area_px : lf->left_area_px;
                  double b = right ? lc->right_area_px : lc->left_area_px;
                  v = fabs (1 - b / a);
                }
              break;
            case CXR_SIGNAL_SEVERITY:
              {
                int z = zone_index (sig->finding);
                v = fabs (severity_value (sc, z) - severity_value (sf, z));
              }
              break;
            case CXR_SIGNAL_TREND_SCORE:
              /* as analyze compares a pair: with the lung fields, the map
               * from the global transform */
              cxr_register_options_init (&ro);
              ro.no_deform = TRUE;
              ro.fixed_lungs = lungs_ok ? lf : NULL;
              ro.moving_lungs = lungs_ok ? lc : NULL;
              cxr_diff_options_init (&dop);
              dop.fixed_lungs = ro.fixed_lungs;
              dop.moving_lungs = ro.moving_lungs;
              if (cxr_register_pair (film, copy, &ro, &r, NULL) && r.status != CXR_REGISTER_FAILED
                  && cxr_diff_pair (film, copy, &r, NAN, &dop, &d, NULL))
                {
                  v = d.trend_score;
                  compared = TRUE;
                }
              break;
            }
          /* undefined (a zero embedding) or not compared: no sample */
          if (!isnan (v))
            g_array_append_val (diffs[s], v);
        }
      if (compared)
        cxr_diff_clear (&d);
    }
}

/**
 * cxr_progression_calibrate:
 * Derives and stores the test-retest limits of @model_id that the store
 * does not have yet (see the top of this file); with @lung_model
 * (nullable) also those of the lungs' areas, with @severity (nullable)
 * those of the Brixia scores. Needs at least one film.
 */
gboolean
cxr_progression_calibrate (CxrStore *store, const CxrModel *model, const CxrLungModel *lung_model,
                           const CxrSeverityModel *severity, gint64 model_id,
                           const CxrProgressionOptions *o, GError **error)
{
  g_autoptr (GHashTable) have = cxr__store_limits (store, model_id, error);
  if (have == NULL)
    return FALSE;
  /* only the limits the store lacks and can have (the lungs' with a lung
   * model): a store calibrated before keeps its limits */
  g_autoptr (GPtrArray) signals = cxr_signals_for_model (model);
  gboolean needed = FALSE;
  for (guint s = 0; s < signals->len; s++)
    {
      const CxrSignal *sig = signals->pdata[s];
      needed = needed
               || (!g_hash_table_contains (have, sig->name)
                   && (sig->kind != CXR_SIGNAL_LUNG_AREA || lung_model != NULL)
                   && (sig->kind != CXR_SIGNAL_SEVERITY || severity != NULL));
    }
  if (!needed)
    return TRUE;
  g_autoptr (GArray) films = cxr__store_calibration_films (store, o->calib_films, error);
  if (films == NULL)
    return FALSE;
  CxrImageLimits limits = CXR_IMAGE_LIMITS_DEFAULT;
  if (!cxr_store_dicom_voi (store, &limits.voi, NULL, error))
    return FALSE;
  guint ns = signals->len;
  g_autofree GArray **diffs = g_new (GArray *, ns);
  for (guint s = 0; s < ns; s++)
    diffs[s] = g_array_new (FALSE, FALSE, sizeof (double));
  GRand *rng = g_rand_new_with_seed (2017);
  for (guint f = 0; f < films->len; f++)
    measure_film (&g_array_index (films, CxrFilmRow, f), &limits, model, lung_model, severity,
                  signals, o->calib_copies, rng, diffs);
  g_rand_free (rng);

  /* the embedding distance (the first signal) is measured on every copy
   * of a readable film with a non-zero embedding */
  gboolean ok = diffs[0]->len > 0;
  if (!ok)
    g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                 "no readable frontal film to derive test-retest limits from");
  g_autofree CxrLimitRow *rows = g_new0 (CxrLimitRow, ns);
  guint n = 0;
  for (guint s = 0; ok && s < ns; s++)
    {
      const CxrSignal *sig = signals->pdata[s];
      if (diffs[s]->len == 0 || g_hash_table_contains (have, sig->name))
        continue;
      rows[n].signal = sig->name;
      rows[n].value = MAX (p95 (diffs[s]), sig->limit_floor);
      rows[n].n_copies = (int) diffs[s]->len;
      n++;
    }
  if (ok)
    ok = cxr__store_write_limits (store, model_id, rows, n, CALIB_METHOD, error);
  for (guint s = 0; s < ns; s++)
    g_array_unref (diffs[s]);
  return ok;
}
