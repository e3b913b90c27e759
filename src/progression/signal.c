/* SPDX-License-Identifier: MIT
 *
 * The signal table (signal.h): a row per kind of signal a series follows,
 * holding everything the rest of cxrtrack asks of it, so that adding a
 * signal is one row here (and the measure it reads, where that is new):
 * its name and findings, whether it is a distance from the first film,
 * the floor of its limit, its unit and range, how a re-posed copy of a
 * film moves it (calibrate.c), the SQL that reads it from a store (run by
 * the store, store-series.c) and why a film can lack it.
 *
 * The floors of the test-retest limits are the signals' resolutions: a
 * probability or an embedding distance is not read closer than 0.01; a
 * trend score of 1 is a change of 0.01 above its threshold over 100 px^2;
 * a lung's area is not read closer than 2 % (its edge moves by a pixel or
 * two); a cardiothoracic ratio not closer than 0.01 (a pixel of the
 * segmenter's grid at each heart border is 0.005 of the thorax); a Brixia
 * zone score not closer than 0.1 (a tenth of a grade), the global not
 * closer than 0.5. progression.c says why limits need floors.
 */
#include <math.h>
#include <string.h>

#include "cxr/register.h"
#include "signal-private.h"

/* --- how re-posed copies move each kind ----------------------------------- */

static double
retest_embedding (const CxrSignal *s, CxrRetest *rt)
{
  (void) s;
  return cxr_model_cosine_distance (rt->pf->embedding, rt->pc->embedding, rt->pf->dim, 1);
}

static double
retest_probability (const CxrSignal *s, CxrRetest *rt)
{
  for (int c = 0; c < rt->pf->n_classes; c++)
    if (g_str_equal (cxr_model_class_name (rt->model, c), s->finding))
      return fabs (rt->pc->probability[c] - rt->pf->probability[c]);
  return NAN;
}

static double
retest_lung_area (const CxrSignal *s, CxrRetest *rt)
{
  if (!rt->lungs_ok)
    return NAN;
  gboolean right = g_str_equal (s->finding, "right");
  double a = right ? rt->lf->right_area_px : rt->lf->left_area_px;
  double b = right ? rt->lc->right_area_px : rt->lc->left_area_px;
  return fabs (1 - b / a);
}

static double
retest_heart (const CxrSignal *s, CxrRetest *rt)
{
  (void) s;
  if (!rt->lungs_ok)
    return NAN;
  return fabs (rt->lc->cardiothoracic_ratio - rt->lf->cardiothoracic_ratio);
}

/* Zone @zone's score (-1: the global), or NAN where the zones are not
 * plausible. */
static double
severity_value (const CxrSeverity *s, int zone)
{
  if (s == NULL || s->status != CXR_SEVERITY_OK)
    return NAN;
  return zone < 0 ? s->global : s->score[zone];
}

static double
retest_severity (const CxrSignal *s, CxrRetest *rt)
{
  int z = cxr_severity_zone_index (s->finding);
  return fabs (severity_value (rt->sc, z) - severity_value (rt->sf, z));
}

/* As analyze compares a pair: with the lung fields, the map from the
 * global transform. */
static double
retest_trend_score (const CxrSignal *s, CxrRetest *rt)
{
  (void) s;
  if (rt->compared == 0)
    {
      CxrRegisterOptions ro;
      CxrDiffOptions dop;
      CxrRegistration r;
      cxr_register_options_init (&ro);
      ro.no_deform = TRUE;
      CxrRegisterInputs rin = { 0, 0, rt->lungs_ok ? rt->lf : NULL, rt->lungs_ok ? rt->lc : NULL };
      cxr_diff_options_init (&dop);
      dop.region = rt->map_region;
      CxrDiffInputs din = { NULL, NULL, rin.fixed_lungs, rin.moving_lungs };
      rt->compared
          = cxr_register_pair (rt->film, rt->copy, &rin, &ro, &r, NULL)
                    && r.status != CXR_REGISTER_FAILED
                    && cxr_diff_pair (rt->film, rt->copy, &r, NAN, &din, &dop, &rt->diff, NULL)
                ? 1
                : -1;
    }
  return rt->compared > 0 ? rt->diff.trend_score : NAN;
}

void
cxr__retest_clear (CxrRetest *rt)
{
  if (rt->compared > 0)
    cxr_diff_clear (&rt->diff);
  rt->compared = 0;
}

/* --- labels ------------------------------------------------------------- */

static char *
label_embedding (const char *finding, gboolean evidence)
{
  (void) finding;
  return g_strdup (evidence ? "embedding_distance"
                            : "image features' distance from the first film");
}

static char *
label_trend_score (const char *finding, gboolean evidence)
{
  (void) finding;
  return g_strdup (evidence ? "trend_score" : "pixel change from the first film (trend score)");
}

static char *
label_probability (const char *finding, gboolean evidence)
{
  (void) evidence;
  return g_strdup_printf ("%s probability", finding);
}

static char *
label_lung_area (const char *finding, gboolean evidence)
{
  return evidence ? g_strdup_printf ("lung_area_loss:%s", finding)
                  : g_strdup_printf ("%s lung's aerated area (loss)", finding);
}

static char *
label_heart (const char *finding, gboolean evidence)
{
  (void) finding;
  return g_strdup (evidence ? "cardiothoracic ratio (from the lung fields)"
                            : "heart size (cardiothoracic ratio)");
}

static char *
label_severity (const char *finding, gboolean evidence)
{
  if (g_str_equal (finding, "global"))
    return g_strdup (evidence ? "Brixia global score (0-18)" : "Brixia global score");
  return g_strdup_printf (evidence ? "Brixia zone %s (%s, 0-3)" : "Brixia zone %s (%s)", finding,
                          cxr_severity_zone_label (finding));
}

/* --- the table ----------------------------------------------------------- */

static const char *const sides[] = { "right", "left", NULL };
static const char *const global[] = { "global", NULL };
static const char *const zones[] = { "A", "B", "C", "D", "E", "F", NULL };

static const CxrSignalClass table[] = {
  { .kind = "embedding_distance",
    .from_baseline = TRUE,
    .floor = 0.01,
    .unit = "cosine distance from the first film",
    .missing_why = "not scored",
    .lo = 0,
    .hi = NAN,
    .sql = "SELECT cosine_distance(a.vector, b.vector) FROM embeddings a, embeddings b"
           " WHERE a.scan_id = ?2 AND b.scan_id = ?1 AND a.model_id = ?3 AND b.model_id = ?3",
    .retest = retest_embedding,
    .label = label_embedding },
  /* the trend score against the first film of the series, 0 there, from
   * a usable registration (ok or low_confidence: failed ones have no map)
   * where that film is the baseline. It counts change of either sign, so
   * only its rise is read (rise_only: progression.c) */
  { .kind = "trend_score",
    .from_baseline = TRUE,
    .rise_only = TRUE,
    .floor = 1.0,
    .unit = "trend score against the first film",
    .missing_why = "no usable registration to the first film",
    .lo = NAN,
    .hi = NAN,
    .sql = "SELECT 0.0 WHERE ?1 = ?2"
           " UNION ALL SELECT c.trend_score FROM pair_changes c JOIN patient_series ps"
           "  ON ps.scan_id = c.moving_scan_id AND ps.baseline_scan_id = c.fixed_scan_id"
           " JOIN registrations r USING (fixed_scan_id, moving_scan_id, kind)"
           " WHERE c.fixed_scan_id = ?2 AND c.moving_scan_id = ?1 AND ?1 <> ?2"
           "   AND c.kind = 'baseline' AND r.status IN ('ok', 'low_confidence')",
    .retest = retest_trend_score,
    .label = label_trend_score },
  { .kind = "probability",
    .model_findings = TRUE,
    .directional = TRUE,
    .one_scale = TRUE,
    .floor = 0.01,
    .unit = "probability",
    .missing_why = "not scored",
    .lo = 0,
    .hi = 1,
    .sql = "SELECT probability FROM predictions WHERE scan_id = ?1 AND model_id = ?3"
           " AND finding = ?4",
    .retest = retest_probability,
    .label = label_probability },
  /* 1 - area / the first film's area, in mm^2 where both films' spacings
   * are known, else in px; from each film's latest lung fields whose areas
   * are a measure. No aerated lung on that side of the first film: no loss
   * to measure (the scraps found would make any later lung a huge gain). */
  { .kind = "lung_area_loss",
    .findings = sides,
    .from_baseline = TRUE,
    .directional = TRUE,
    .floor = 0.02,
    .unit = "share of the lung's area lost since the first film",
    .missing_why = "no plausible lung fields",
    .lo = NAN,
    .hi = NAN,
    .needs = CXR_SIGNAL_NEEDS_LUNGS,
    .sql = "SELECT CASE WHEN ?1 = ?2 THEN 0.0"
           "            WHEN a.mm > 0 AND b.mm IS NOT NULL THEN 1 - b.mm / a.mm"
           "            ELSE 1 - b.px / a.px END"
           "  FROM (SELECT CASE ?4 WHEN 'right' THEN right_area_px ELSE left_area_px END px,"
           "               CASE ?4 WHEN 'right' THEN right_area_mm2 ELSE left_area_mm2 END mm,"
           "               airless_side"
           "          FROM lung_fields WHERE scan_id = ?2"
           "           AND (status = 'ok' OR airless_side IS NOT NULL)"
           "         ORDER BY model_id DESC LIMIT 1) a,"
           "       (SELECT CASE ?4 WHEN 'right' THEN right_area_px ELSE left_area_px END px,"
           "               CASE ?4 WHEN 'right' THEN right_area_mm2 ELSE left_area_mm2 END mm"
           "          FROM lung_fields WHERE scan_id = ?1"
           "           AND (status = 'ok' OR airless_side IS NOT NULL)"
           "         ORDER BY model_id DESC LIMIT 1) b"
           " WHERE a.px > 0 AND a.airless_side IS NOT ?4",
    .retest = retest_lung_area,
    .label = label_lung_area },
  /* the heart's width over the thorax's, read from a film's latest
   * plausible lung fields (src/nn/lungs-heart.c) */
  { .kind = "cardiothoracic_ratio",
    .directional = TRUE,
    .floor = 0.01,
    .unit = "cardiothoracic ratio",
    .missing_why = "no heart border in plausible lung fields",
    .lo = 0,
    .hi = 1,
    .needs = CXR_SIGNAL_NEEDS_LUNGS,
    .since_schema = 23,
    .sql = "SELECT cardiothoracic_ratio FROM lung_fields WHERE scan_id = ?1 AND status = 'ok'"
           " ORDER BY model_id DESC LIMIT 1",
    .retest = retest_heart,
    .label = label_heart },
  /* a film's Brixia global or one zone's score, by the latest head, where
   * its zones are plausible */
  { .kind = "severity",
    .findings = global,
    .directional = TRUE,
    .floor = 0.5,
    .unit = "Brixia score",
    .missing_why = "no plausible Brixia zones",
    .lo = 0,
    .hi = 18,
    .needs = CXR_SIGNAL_NEEDS_SEVERITY,
    .since_schema = 20,
    .sql = "SELECT f.global FROM film_severity f"
           " WHERE f.scan_id = ?1 AND f.status = 'ok' AND ?4 = 'global'"
           " AND EXISTS (SELECT 1 FROM zone_scores z WHERE z.scan_id = f.scan_id"
           "             AND z.model_id = f.model_id)"
           " ORDER BY f.model_id DESC LIMIT 1",
    .retest = retest_severity,
    .label = label_severity },
  { .kind = "severity",
    .findings = zones,
    .directional = TRUE,
    .floor = 0.1,
    .unit = "Brixia score",
    .missing_why = "no plausible Brixia zones",
    .lo = 0,
    .hi = 3,
    .needs = CXR_SIGNAL_NEEDS_SEVERITY,
    .since_schema = 20,
    .sql = "SELECT z.score FROM film_severity f JOIN zone_scores z USING (scan_id, model_id)"
           " WHERE f.scan_id = ?1 AND f.status = 'ok' AND z.zone = ?4"
           " ORDER BY f.model_id DESC LIMIT 1",
    .retest = retest_severity,
    .label = label_severity },
};

static gboolean
has_finding (const CxrSignalClass *k, const char *finding)
{
  if (k->model_findings)
    return finding != NULL;
  if (k->findings == NULL)
    return finding == NULL;
  for (guint i = 0; finding && k->findings[i]; i++)
    if (g_str_equal (k->findings[i], finding))
      return TRUE;
  return FALSE;
}

/* The row of the signal whose kind is @kind's first @len bytes, with
 * @finding; NULL if none. */
static const CxrSignalClass *
row_of (const char *kind, gsize len, const char *finding)
{
  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    if (strlen (table[i].kind) == len && strncmp (table[i].kind, kind, len) == 0
        && has_finding (&table[i], finding))
      return &table[i];
  return NULL;
}

/**
 * cxr__signal_class_of_name:
 * @name: a signal's name as stored ("probability:Edema", "trend_score")
 * @finding: (out): the part after the colon, or NULL
 *
 * Returns: (nullable): the signal's row, without making the signal.
 */
const CxrSignalClass *
cxr__signal_class_of_name (const char *name, const char **finding)
{
  const char *colon = strchr (name, ':');
  *finding = colon ? colon + 1 : NULL;
  return row_of (name, colon ? (gsize) (colon - name) : strlen (name), *finding);
}

/**
 * cxr_signal_new:
 * @kind: the signal's kind ("probability", "severity", ...)
 * @finding: (nullable): its finding, side or zone, where the kind has them
 *
 * Returns: (transfer full) (nullable): the signal, or NULL where the table
 * has no such signal.
 */
CxrSignal *
cxr_signal_new (const char *kind, const char *finding)
{
  const CxrSignalClass *k = row_of (kind, strlen (kind), finding);
  if (k == NULL)
    return NULL;
  CxrSignal *s = g_new0 (CxrSignal, 1);
  s->klass = k;
  s->name = finding ? g_strdup_printf ("%s:%s", k->kind, finding) : g_strdup (k->kind);
  s->finding = g_strdup (finding);
  s->label = k->label (finding, FALSE);
  s->from_baseline = k->from_baseline;
  s->rise_only = k->rise_only;
  s->directional = k->directional;
  s->one_scale = k->one_scale;
  s->limit_floor = k->floor;
  s->unit = k->unit;
  s->missing_why = k->missing_why;
  s->lo = k->lo;
  s->hi = k->hi;
  return s;
}

void
cxr_signal_free (CxrSignal *s)
{
  if (s == NULL)
    return;
  g_free (s->name);
  g_free (s->finding);
  g_free (s->label);
  g_free (s);
}

/**
 * cxr_signals_for_model:
 * Every signal a series has with @model, in the table's order: the
 * embedding distance, the trend score, each finding's probability in the
 * model's order, the right and left lung's area loss (from the lung
 * fields, when there are), the cardiothoracic ratio (from them too), then
 * the Brixia global and zones A to F (from
 * a zone-score head, when the store has its scores).
 *
 * Returns: (transfer full) (element-type CxrSignal): the signals.
 */
GPtrArray *
cxr_signals_for_model (const CxrModel *model)
{
  GPtrArray *a = g_ptr_array_new_with_free_func ((GDestroyNotify) cxr_signal_free);
  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    {
      const CxrSignalClass *k = &table[i];
      if (k->model_findings)
        for (int c = 0; c < cxr_model_n_classes (model); c++)
          g_ptr_array_add (a, cxr_signal_new (k->kind, cxr_model_class_name (model, c)));
      else if (k->findings)
        for (guint f = 0; k->findings[f]; f++)
          g_ptr_array_add (a, cxr_signal_new (k->kind, k->findings[f]));
      else
        g_ptr_array_add (a, cxr_signal_new (k->kind, NULL));
    }
  return a;
}

/* Whether @s can be measured with the models given (a lung model, a
 * zone-score head). */
gboolean
cxr__signal_measurable (const CxrSignal *s, gboolean lung_model, gboolean severity)
{
  return (lung_model || !(s->klass->needs & CXR_SIGNAL_NEEDS_LUNGS))
         && (severity || !(s->klass->needs & CXR_SIGNAL_NEEDS_SEVERITY));
}

/**
 * cxr__signals_reader_new:
 * A reader of every signal's values in @store, by the table's queries
 * (none for a kind whose tables the store is too old to have: a store
 * opened read-only is not migrated).
 */
CxrSignalReader *
cxr__signals_reader_new (CxrStore *store, gint64 model_id, GError **error)
{
  const char *sql[G_N_ELEMENTS (table)];
  int version = cxr_store_schema_version (store);
  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    sql[i] = version >= table[i].since_schema ? table[i].sql : NULL;
  return cxr__signal_reader_new (store, model_id, sql, G_N_ELEMENTS (table), error);
}

/* Whether @s has a value at film @scan_id of the series whose first film
 * is @first_scan_id (in @value). */
gboolean
cxr__signal_value (CxrSignalReader *r, const CxrSignal *s, gint64 first_scan_id, gint64 scan_id,
                   double *value)
{
  return cxr__signal_reader_value (r, (guint) (s->klass - table), first_scan_id, scan_id,
                                   s->finding, value);
}

/* The signal as a flag's evidence names it. */
char *
cxr__signal_evidence_label (const CxrSignal *s)
{
  return s->klass->label (s->finding, TRUE);
}
