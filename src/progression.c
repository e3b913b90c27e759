/* SPDX-License-Identifier: MIT
 *
 * Progression flags. Clinicians follow glaucoma this way (event analysis
 * against baseline with confirmation, and trend analysis over all visits);
 * cxrtrack does the same for serial chest films.
 *
 * Signals, per patient and per view kind (PA films with PA films, AP with
 * AP), against time: each finding's probability; the embedding's cosine
 * distance from the series' first film; the trend score against it
 * (pair_changes.trend_score: the change score at the lower threshold a
 * trend test can afford, see diff.c; when that film is the patient's
 * baseline, and only from registrations with status ok: a doubtful
 * alignment is not evidence of change, so a series with one has no
 * trend-score signal). The time axis
 * is days when every film has a study date or a day offset, else the visit
 * number; every flag says which.
 *
 * Test-retest limits are derived, not guessed (calibrate.c): the 95th
 * percentile of |signal(copy) - signal(film)| over re-posed and re-exposed
 * copies of films from the store, floored at each signal's resolution
 * (signal.c). The acute
 * limit is acute_factor times the limit, and at least acute_share (0.5) of
 * the series' largest rise over its first film: a step is acute when it
 * stands out of the noise *and* carries most of the change, slow when the
 * change is spread over the visits. (A signal whose re-posed copies
 * barely move, like the trend score, has a tiny limit; without the share,
 * any real growth would be "acute", however gradual.)
 *
 * Per series and signal (rises are worsening for all three):
 *   insufficient_visits  fewer films than the Mann-Kendall test needs to be
 *                        able to reach alpha (5 for 0.05; for the signals
 *                        measured against the first film, 5 after it);
 *   acute_change         a rise between consecutive films beyond the acute
 *                        limit that the following film confirms (still
 *                        beyond it against the film before the step), or
 *                        at the latest film: a one-film spike is more
 *                        often an artefact of that film than a change;
 *   slow_progression     a significant monotone rise (Mann-Kendall p <
 *                        alpha, tau > 0) whose total exceeds the test-retest
 *                        limit, with no step beyond the acute limit;
 *   improving            a significant fall;
 *   stable               otherwise.
 * Event analysis (first film beyond the limit, confirmed on the next
 * confirm - 1 films) is reported with each flag.
 */
#include <math.h>
#include <string.h>

#include "cxr/error.h"
#include "cxr/progression.h"
#include "cxr/signal.h"
#include "cxr/trend.h"
#include "store-private.h"

void
cxr_progression_options_init (CxrProgressionOptions *o)
{
  o->alpha = 0.05;
  o->confirm = 2;
  o->acute_factor = 3.0;
  o->acute_share = 0.5;
  o->calib_films = 20;
  o->calib_copies = 2;
}

/**
 * cxr_progression_load_config:
 * Reads the [progression] group of a key file: alpha, confirm,
 * acute_factor, acute_share, calib_films, calib_copies. Absent keys keep
 * their values.
 */
gboolean
cxr_progression_load_config (const char *path, CxrProgressionOptions *o, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) err = NULL;
  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &err))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "%s: %s", path, err->message);
      return FALSE;
    }
  struct {
    const char *key;
    double *d;
    int *i;
    double lo, hi;
  } keys[] = {
    { "alpha", &o->alpha, NULL, 1e-6, 0.5 },
    { "confirm", NULL, &o->confirm, 1, 10 },
    { "acute_factor", &o->acute_factor, NULL, 1, 100 },
    { "acute_share", &o->acute_share, NULL, 0, 1 },
    { "calib_films", NULL, &o->calib_films, 1, 10000 },
    { "calib_copies", NULL, &o->calib_copies, 1, 100 },
  };
  for (guint k = 0; k < G_N_ELEMENTS (keys); k++)
    {
      if (!g_key_file_has_key (kf, "progression", keys[k].key, NULL))
        continue;
      double v = g_key_file_get_double (kf, "progression", keys[k].key, &err);
      if (err || v < keys[k].lo || v > keys[k].hi)
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                       "%s: [progression] %s must be a number in %g..%g", path, keys[k].key,
                       keys[k].lo, keys[k].hi);
          return FALSE;
        }
      if (keys[k].d)
        *keys[k].d = v;
      else
        *keys[k].i = (int) v;
    }
  return TRUE;
}

/**
 * cxr_progression_classify:
 * @y: the signal at each film, in time order; rises are worsening
 * @limit: test-retest limit of the signal
 * @from_baseline: @y is a distance from the first film, so y[0] = 0 by
 *   definition rather than by measurement. Every later value carries the
 *   re-posing noise of a registered pair and y[0] does not: kept in the
 *   trend test, it would be the series' minimum by construction and bias
 *   every stable series towards a rise. The trend test and slope then use
 *   films 2..n; steps and events still count from y[0].
 */
void
cxr_progression_classify (const double *t, const double *y, int n, double limit, double acute_limit,
                          gboolean from_baseline, const CxrProgressionOptions *o,
                          CxrTrendResult *out)
{
  memset (out, 0, sizeof *out);
  out->tau = out->p_value = out->slope = out->slope_low = out->slope_high = NAN;
  out->event_index = out->acute_index = -1;
  out->max_step = -INFINITY;
  double rise = 0;
  for (int i = 1; i < n; i++)
    rise = MAX (rise, y[i] - y[0]);
  acute_limit = MAX (acute_limit, o->acute_share * rise);
  out->acute_limit = acute_limit;
  for (int i = 1; i < n; i++)
    {
      double step = y[i] - y[i - 1];
      gboolean confirmed = i == n - 1 || y[i + 1] - y[i - 1] > acute_limit;
      if (step > acute_limit && confirmed && (out->acute_index < 0 || step > out->max_step))
        out->acute_index = i;
      out->max_step = MAX (out->max_step, step);
    }
  g_autofree double *rel = g_new (double, MAX (n, 1));
  for (int i = 0; i < n; i++)
    rel[i] = y[i] - y[0];
  out->event_index = cxr_trend_event (rel, n, limit, o->confirm);
  CxrMannKendall mk;
  int skip = from_baseline ? 1 : 0, nt = n - skip;
  if (nt >= 3 && cxr_trend_mann_kendall (t + skip, y + skip, nt, &mk))
    {
      out->tau = mk.tau;
      out->p_value = mk.p_value;
      CxrTheilSen ts;
      if (cxr_trend_theil_sen (t + skip, y + skip, nt, 0.95, &ts))
        {
          out->slope = ts.slope;
          out->slope_low = ts.low;
          out->slope_high = ts.high;
        }
    }
  if (out->acute_index >= 0)
    out->kind = CXR_TREND_ACUTE_CHANGE;
  else if (nt < cxr_trend_min_visits (o->alpha))
    out->kind = CXR_TREND_INSUFFICIENT_VISITS;
  else if (out->p_value < o->alpha && out->tau > 0 && y[n - 1] - y[0] > limit)
    out->kind = CXR_TREND_SLOW_PROGRESSION;
  else if (out->p_value < o->alpha && out->tau < 0)
    out->kind = CXR_TREND_IMPROVING;
  else
    out->kind = CXR_TREND_STABLE;
}

/* --- flags ----------------------------------------------------------------- */

static char *
evidence (const CxrSignal *sig, const char *view, const CxrSeriesFilm *films, const double *y,
          int n, const char *axis, double limit, double acute, const CxrTrendResult *r)
{
  GString *s = g_string_new (NULL);
  gboolean prob = sig->kind == CXR_SIGNAL_PROBABILITY;
  const char *what = prob ? sig->finding : sig->name;
  g_string_append_printf (s, "%s %s%s from %.3g to %.3g over %d %s films (visits %d-%d)", what,
                          prob ? "probability " : "",
                          y[n - 1] > y[0]   ? "rose"
                          : y[n - 1] < y[0] ? "fell"
                                            : "stayed",
                          y[0], y[n - 1], n, view, films[0].visit, films[n - 1].visit);
  if (!isnan (r->p_value))
    g_string_append_printf (
        s, "; Mann-Kendall tau %.2f, p = %.3g; Theil-Sen %.3g per %s [%.3g, %.3g]", r->tau,
        r->p_value, r->slope, g_str_equal (axis, "days") ? "day" : "visit", r->slope_low,
        r->slope_high);
  if (r->acute_index >= 0)
    g_string_append_printf (s, "; a step of %.3g at %s exceeded the acute limit %.3g", r->max_step,
                            films[r->acute_index].image_index, acute);
  else if (n > 1)
    g_string_append_printf (s, "; no single step exceeded the acute limit %.3g", acute);
  if (r->event_index >= 0)
    g_string_append_printf (s, "; beyond the test-retest limit %.3g from %s on, confirmed", limit,
                            films[r->event_index].image_index);
  g_string_append_printf (s, "; films %s to %s", films[0].image_index, films[n - 1].image_index);
  return g_string_free (s, FALSE);
}

/* The time axis of a series: days from the first film when every film has
 * a date or day offset and they increase, else the visit number. */
static const char *
time_axis (const CxrSeriesFilm *fs, int n, double *t)
{
  gboolean days = TRUE;
  for (int i = 0; i < n; i++)
    days = days && !isnan (fs[i].day) && (i == 0 || fs[i].day > fs[i - 1].day);
  for (int i = 0; i < n; i++)
    t[i] = days ? fs[i].day - fs[0].day : fs[i].visit;
  return days ? "days" : "visit";
}

/* The flags of one series (films @fs[0..n) of one view kind), one per
 * signal that has a limit and a value at every film, appended to @flags.
 * Returns whether one of them is slow_progression or acute_change. */
static gboolean
flag_series (CxrSignalReader *reader, const GPtrArray *signals, GHashTable *limits,
             const CxrSeriesFilm *fs, int n, const CxrProgressionOptions *o, GArray *flags)
{
  g_autofree double *t = g_new (double, n), *y = g_new (double, n);
  const char *axis = time_axis (fs, n, t);
  gboolean flagged = FALSE;
  for (guint k = 0; k < signals->len; k++)
    {
      const CxrSignal *sig = signals->pdata[k];
      const double *lim = g_hash_table_lookup (limits, sig->name);
      if (lim == NULL)
        continue;
      gboolean have = TRUE;
      for (int i = 0; i < n && have; i++)
        have = cxr__signal_reader_value (reader, sig, fs[0].scan_id, fs[i].scan_id, i == 0, &y[i]);
      if (!have)
        continue;
      CxrTrendResult r;
      cxr_progression_classify (t, y, n, *lim, o->acute_factor * *lim, sig->from_baseline, o, &r);
      CxrFlagRow f = { g_strdup (sig->name),
                       g_strdup (fs[0].view_kind),
                       r.kind,
                       n,
                       fs[0].visit,
                       fs[n - 1].visit,
                       axis,
                       r.tau,
                       r.p_value,
                       r.slope,
                       r.slope_low,
                       r.slope_high,
                       *lim,
                       r.acute_limit,
                       r.event_index >= 0 ? fs[r.event_index].visit : -1 };
      f.evidence = evidence (sig, fs[0].view_kind, fs, y, n, axis, *lim, r.acute_limit, &r);
      g_array_append_val (flags, f);
      flagged = flagged || r.kind == CXR_TREND_SLOW_PROGRESSION || r.kind == CXR_TREND_ACUTE_CHANGE;
    }
  return flagged;
}

/* One patient's flags: every series of one view kind with two or more
 * films. Returns the flag rows, or NULL with @error set. */
static GArray *
flag_patient (CxrStore *store, CxrSignalReader *reader, const GPtrArray *signals,
              GHashTable *limits, const char *pid, const CxrProgressionOptions *o,
              gboolean *flagged, GError **error)
{
  g_autoptr (GArray) films = cxr__store_frontal_series (store, pid, error);
  if (films == NULL)
    return NULL;
  GArray *flags = g_array_new (FALSE, TRUE, sizeof (CxrFlagRow));
  g_array_set_clear_func (flags, cxr__flag_row_clear);
  *flagged = FALSE;
  /* films are ordered by view_kind, then visit */
  for (guint a = 0; a < films->len;)
    {
      const CxrSeriesFilm *fs = &g_array_index (films, CxrSeriesFilm, a);
      guint b = a;
      while (b < films->len
             && g_str_equal (g_array_index (films, CxrSeriesFilm, b).view_kind, fs->view_kind))
        b++;
      int n = (int) (b - a);
      if (n >= 2 && flag_series (reader, signals, limits, fs, n, o, flags))
        *flagged = TRUE;
      a = b;
    }
  return flags;
}

/**
 * cxr_progression_flag_all:
 * Recomputes the flags of every patient with two or more frontal films
 * of one view kind, one transaction per patient.
 */
gboolean
cxr_progression_flag_all (CxrStore *store, const CxrModel *model, gint64 model_id,
                          const CxrProgressionOptions *o, gint64 run_id, guint64 *n_flagged,
                          GError **error)
{
  *n_flagged = 0;
  g_autoptr (GHashTable) limits = cxr__store_limits (store, model_id, error);
  if (limits == NULL)
    return FALSE;
  g_autoptr (GPtrArray) patients = cxr__store_flag_patients (store, error);
  if (patients == NULL)
    return FALSE;
  g_autoptr (CxrSignalReader) reader = cxr__signal_reader_new (store, model_id, error);
  if (reader == NULL)
    return FALSE;
  g_autoptr (GPtrArray) signals = cxr_signals_for_model (model);
  for (guint pi = 0; pi < patients->len; pi++)
    {
      const char *pid = patients->pdata[pi];
      gboolean flagged;
      g_autoptr (GArray) flags
          = flag_patient (store, reader, signals, limits, pid, o, &flagged, error);
      if (flags == NULL || !cxr__store_replace_flags (store, pid, flags, model_id, run_id, error))
        return FALSE;
      *n_flagged += flagged;
    }
  return TRUE;
}
