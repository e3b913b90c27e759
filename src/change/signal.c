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
#include "cxr/signal.h"

CxrSignal *
cxr_signal_new (CxrSignalKind kind, const char *finding)
{
  gboolean named = kind != CXR_SIGNAL_EMBEDDING_DISTANCE && kind != CXR_SIGNAL_TREND_SCORE;
  g_return_val_if_fail (named == (finding != NULL), NULL);
  CxrSignal *s = g_new0 (CxrSignal, 1);
  s->kind = kind;
  switch (kind)
    {
    case CXR_SIGNAL_EMBEDDING_DISTANCE:
      s->name = g_strdup ("embedding_distance");
      s->from_baseline = TRUE;
      s->limit_floor = 0.01;
      break;
    case CXR_SIGNAL_TREND_SCORE:
      s->name = g_strdup ("trend_score");
      s->from_baseline = TRUE;
      s->limit_floor = 1.0;
      break;
    case CXR_SIGNAL_PROBABILITY:
      s->name = g_strdup_printf ("probability:%s", finding);
      s->finding = g_strdup (finding);
      s->limit_floor = 0.01;
      break;
    case CXR_SIGNAL_LUNG_AREA:
      s->name = g_strdup_printf ("lung_area_loss:%s", finding);
      s->finding = g_strdup (finding);
      s->from_baseline = TRUE;
      s->limit_floor = 0.02;
      break;
    case CXR_SIGNAL_SEVERITY:
      s->name = g_strdup_printf ("severity:%s", finding);
      s->finding = g_strdup (finding);
      s->limit_floor = g_str_equal (finding, "global") ? 0.5 : 0.1;
      break;
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
