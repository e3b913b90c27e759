/* SPDX-License-Identifier: MIT
 *
 * The signal table (signal.h). The floors of the test-retest limits are
 * the signals' resolutions: a probability or an embedding distance is not
 * read closer than 0.01; a trend score of 1 is a change of 0.01 above its
 * threshold over 100 px^2; a lung's area is not read closer than 2 %
 * (its edge moves by a pixel or two); a Brixia zone score not closer than
 * 0.1 (a tenth of a grade), the global not closer than 0.5. progression.c
 * says why limits need floors.
 */
#include <math.h>

#include "cxr/signal.h"

/* A row per kind of signal: what the series follows, how it is named,
 * whether it is a distance from the first film, the floor of its limit,
 * its unit and range, and why a film can lack it. A kind's values come
 * from the store (store-series.c) and its test-retest differences from
 * calibrate.c. */
typedef struct {
  CxrSignalKind kind;
  const char *prefix; /* the name, or "prefix:<finding>" */
  gboolean named;     /* needs a finding */
  gboolean from_baseline;
  double floor;
  const char *unit;
  const char *missing_why;
  double lo, hi;
} Kind;

static const Kind kinds[] = {
  { CXR_SIGNAL_EMBEDDING_DISTANCE, "embedding_distance", FALSE, TRUE, 0.01,
    "cosine distance from the first film", "not scored", 0, NAN },
  { CXR_SIGNAL_TREND_SCORE, "trend_score", FALSE, TRUE, 1.0, "trend score against the first film",
    "no usable registration to the first film", NAN, NAN },
  { CXR_SIGNAL_PROBABILITY, "probability", TRUE, FALSE, 0.01, "probability", "not scored", 0, 1 },
  { CXR_SIGNAL_LUNG_AREA, "lung_area_loss", TRUE, TRUE, 0.02,
    "share of the lung's area lost since the first film", "no plausible lung fields", NAN, NAN },
  /* the zones 0-3 read to a tenth of a grade, the global 0-18 to half a
   * point: set below */
  { CXR_SIGNAL_SEVERITY, "severity", TRUE, FALSE, 0.1, "Brixia score", "no plausible Brixia zones",
    0, 3 },
};

CxrSignal *
cxr_signal_new (CxrSignalKind kind, const char *finding)
{
  const Kind *k = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    if (kinds[i].kind == kind)
      k = &kinds[i];
  g_return_val_if_fail (k != NULL && k->named == (finding != NULL), NULL);
  CxrSignal *s = g_new0 (CxrSignal, 1);
  s->kind = kind;
  s->name = k->named ? g_strdup_printf ("%s:%s", k->prefix, finding) : g_strdup (k->prefix);
  s->finding = g_strdup (finding);
  s->from_baseline = k->from_baseline;
  s->limit_floor = k->floor;
  s->unit = k->unit;
  s->missing_why = k->missing_why;
  s->lo = k->lo;
  s->hi = k->hi;
  if (kind == CXR_SIGNAL_SEVERITY && g_str_equal (finding, "global"))
    {
      s->limit_floor = 0.5;
      s->hi = 18;
    }
  return s;
}

void
cxr_signal_free (CxrSignal *s)
{
  if (s == NULL)
    return;
  g_free (s->name);
  g_free (s->finding);
  g_free (s);
}

/**
 * cxr_signals_for_model:
 * Every signal a series has with @model: the embedding distance, the
 * trend score, each finding's probability in the model's order, the
 * right and left lung's area loss (from the lung fields, when there are),
 * then the Brixia global and zones A to F (from a zone-score head, when
 * the store has its scores).
 *
 * Returns: (transfer full) (element-type CxrSignal): the signals.
 */
GPtrArray *
cxr_signals_for_model (const CxrModel *model)
{
  GPtrArray *a = g_ptr_array_new_with_free_func ((GDestroyNotify) cxr_signal_free);
  g_ptr_array_add (a, cxr_signal_new (CXR_SIGNAL_EMBEDDING_DISTANCE, NULL));
  g_ptr_array_add (a, cxr_signal_new (CXR_SIGNAL_TREND_SCORE, NULL));
  for (int c = 0; c < cxr_model_n_classes (model); c++)
    g_ptr_array_add (a, cxr_signal_new (CXR_SIGNAL_PROBABILITY, cxr_model_class_name (model, c)));
  g_ptr_array_add (a, cxr_signal_new (CXR_SIGNAL_LUNG_AREA, "right"));
  g_ptr_array_add (a, cxr_signal_new (CXR_SIGNAL_LUNG_AREA, "left"));
  static const char *const sev[] = { "global", "A", "B", "C", "D", "E", "F" };
  for (guint k = 0; k < G_N_ELEMENTS (sev); k++)
    g_ptr_array_add (a, cxr_signal_new (CXR_SIGNAL_SEVERITY, sev[k]));
  return a;
}
