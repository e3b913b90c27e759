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
 * Per series and signal (rises are worsening for all of them):
 *   acute_change         a rise between consecutive films beyond the acute
 *                        limit that the following film confirms (still
 *                        beyond it against the film before the step): a
 *                        one-film spike is more often an artefact of that
 *                        film than a change;
 *   slow_progression     a significant monotone rise (Mann-Kendall p <
 *                        alpha, tau > 0) whose total exceeds the limit,
 *                        with no confirmed step beyond the acute limit; or,
 *                        where the series has too few films for the trend
 *                        test to reach alpha, a confirmed event (confirm
 *                        films in a row beyond the limit against the first)
 *                        that lasts to the latest film (by_event);
 *   improving            a significant fall;
 *   unconfirmed_change   a step beyond the acute limit at the latest film,
 *                        which no later film confirms yet;
 *   stable               otherwise, when the series could show a change;
 *   insufficient_visits  two films and no step beyond the acute limit: no
 *                        trend test, no event can be confirmed.
 * Event analysis (first film beyond the limit, confirmed on the next
 * confirm - 1 films) is reported with each flag.
 */
#include <math.h>
#include <string.h>

#include "cxr/error.h"
#include "cxr/progression.h"
#include "cxr/signal.h"
#include "cxr/trend.h"
#include "progression-private.h"
#include "signal-private.h"
#include "store-private.h"
#include "util-private.h"

void
cxr_progression_options_init (CxrProgressionOptions *o)
{
  o->alpha = 0.05;
  o->confirm = 2;
  o->acute_factor = 3.0;
  o->acute_share = 0.5;
  o->calib_films = 20;
  o->calib_copies = 2;
  o->shard.k = o->shard.n = 0;
  o->map_region = CXR_DIFF_REGION_WHOLE_LUNG;
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
 * @flags: CXR_TREND_FROM_BASELINE: @y is a distance from the first film,
 *   so y[0] = 0 by definition rather than by measurement. Every later value
 *   carries the re-posing noise of a registered pair and y[0] does not:
 *   kept in the trend test, it would be the series' minimum by
 *   construction and bias every stable series towards a rise. The trend
 *   test and slope then use films 2..n; steps and events still count from
 *   y[0]. CXR_TREND_RISE_ONLY: only a rise is read (the trend score counts
 *   change of either sign: its fall is no improvement), so the test is
 *   one-sided and its p-value is that of a rise (P(S >= s)); never
 *   improving. With six films and the first left out, the two-sided exact
 *   test reaches 0.05 only when the five values are in strict order (p
 *   0.017; one swap: 0.083): one noisy film hid a nodule growing from 4 to
 *   15 mm (bench/progression_synth.py --start 4 --step 2.2 --in-lungs:
 *   trend scores 5.0, 2.3, 5.3, 10.4, 16.9), while the rise was the
 *   hypothesis all along. One-sided, one swap is p 0.042.
 */
void
cxr_progression_classify (const double *t, const double *y, int n, double limit, double acute_limit,
                          CxrTrendSignalFlags flags, const CxrProgressionOptions *o,
                          CxrTrendResult *out)
{
  memset (out, 0, sizeof *out);
  out->tau = out->p_value = out->slope = out->slope_low = out->slope_high = NAN;
  out->event_index = out->acute_index = out->unconfirmed_index = -1;
  out->by_event = FALSE;
  out->max_step = -INFINITY;
  double rise = 0;
  for (int i = 1; i < n; i++)
    rise = MAX (rise, y[i] - y[0]);
  acute_limit = MAX (acute_limit, o->acute_share * rise);
  out->acute_limit = acute_limit;
  double acute_step = -INFINITY;
  for (int i = 1; i < n; i++)
    {
      double step = y[i] - y[i - 1];
      if (step > acute_limit && i == n - 1)
        out->unconfirmed_index = i;
      else if (step > acute_limit && y[i + 1] - y[i - 1] > acute_limit && step > acute_step)
        {
          out->acute_index = i;
          acute_step = step;
        }
      out->max_step = MAX (out->max_step, step);
    }
  g_autofree double *rel = g_new (double, MAX (n, 1));
  for (int i = 0; i < n; i++)
    rel[i] = y[i] - y[0];
  out->event_index = cxr_trend_event (rel, n, limit, o->confirm);
  CxrMannKendall mk;
  gboolean from_baseline = (flags & CXR_TREND_FROM_BASELINE) != 0;
  gboolean rise_only = (flags & CXR_TREND_RISE_ONLY) != 0;
  int skip = from_baseline ? 1 : 0, nt = n - skip;
  gboolean testable = nt >= cxr_trend_min_visits (o->alpha);
  /* a series too short for the test to reach alpha has no p-value: a
   * flag on it rests on a step or a lasting event, never on the test */
  if (nt >= 3 && cxr_trend_mann_kendall (t + skip, y + skip, nt, &mk))
    {
      out->tau = testable ? mk.tau : NAN;
      /* one-sided for a rise: half the two-sided p when S > 0; 1 - that
       * when S < 0 (the exact and normal distributions of S are
       * symmetric) */
      double p = rise_only ? (mk.tau > 0 ? mk.p_value / 2 : 1 - mk.p_value / 2) : mk.p_value;
      out->p_value = testable ? p : NAN;
      CxrTheilSen ts;
      if (cxr_trend_theil_sen (t + skip, y + skip, nt, 0.95, &ts))
        {
          out->slope = ts.slope;
          out->slope_low = ts.low;
          out->slope_high = ts.high;
        }
    }
  /* an event that lasts: from event_index on, every film beyond the limit */
  gboolean lasting = out->event_index >= 0;
  for (int i = MAX (out->event_index, 0); lasting && i < n; i++)
    lasting = rel[i] > limit;
  if (out->acute_index >= 0)
    out->kind = CXR_TREND_ACUTE_CHANGE;
  else if (testable && out->p_value < o->alpha && out->tau > 0 && y[n - 1] - y[0] > limit)
    out->kind = CXR_TREND_SLOW_PROGRESSION;
  else if (testable && !rise_only && out->p_value < o->alpha && out->tau < 0)
    out->kind = CXR_TREND_IMPROVING;
  else if (!testable && lasting)
    {
      out->kind = CXR_TREND_SLOW_PROGRESSION;
      out->by_event = TRUE;
    }
  else if (out->unconfirmed_index >= 0)
    out->kind = CXR_TREND_UNCONFIRMED_CHANGE;
  else if (n < o->confirm + 1)
    out->kind = CXR_TREND_INSUFFICIENT_VISITS;
  else
    out->kind = CXR_TREND_STABLE;
}

/* --- flags ----------------------------------------------------------------- */

static char *
evidence (const CxrSignal *sig, const char *view, const CxrSeriesFilm *films, const double *y,
          int n, const char *axis, double limit, const char *source, const CxrTrendResult *r,
          const char *left)
{
  GString *s = g_string_new (NULL);
  g_autofree char *what = cxr__signal_evidence_label (sig);
  g_string_append_printf (s, "%s %s from %.3g to %.3g over %d %s films (visits %d-%d)", what,
                          y[n - 1] > y[0]   ? "rose"
                          : y[n - 1] < y[0] ? "fell"
                                            : "stayed",
                          y[0], y[n - 1], n, view, films[0].visit, films[n - 1].visit);
  g_string_append_printf (s, "; limit %.3g (%s)", limit,
                          g_str_equal (source, "visits") ? "the store's visit-to-visit spread"
                          : g_str_equal (source, "reference")
                              ? "cxrtrack's reference limits, from re-posed copies of other"
                                " patients' films: this store has too few films of its own"
                          : g_str_equal (source, "reference_visits")
                              ? "cxrtrack's reference visit-to-visit spread, from other patients'"
                                " series: this store has too few pairs of its own"
                              : "re-posed copies of films");
  if (!isnan (r->p_value))
    g_string_append_printf (
        s, "; Mann-Kendall tau %.2f, p = %.3g%s; Theil-Sen %.3g per %s [%.3g, %.3g]", r->tau,
        r->p_value, sig->rise_only ? " (one-sided, for a rise)" : "", r->slope,
        g_str_equal (axis, "days") ? "day" : "visit", r->slope_low, r->slope_high);
  else if (n > 1)
    {
      g_string_append_printf (s, "; too few films for the trend test (no p-value)");
      if (!isnan (r->slope))
        g_string_append_printf (s, "; Theil-Sen %.3g per %s [%.3g, %.3g]", r->slope,
                                g_str_equal (axis, "days") ? "day" : "visit", r->slope_low,
                                r->slope_high);
    }
  if (r->acute_index >= 0)
    g_string_append_printf (s,
                            "; a step of %.3g from %s to %s exceeded the acute limit %.3g"
                            " and the next film confirmed it",
                            y[r->acute_index] - y[r->acute_index - 1],
                            films[r->acute_index - 1].image_index,
                            films[r->acute_index].image_index, r->acute_limit);
  if (r->unconfirmed_index >= 0)
    g_string_append_printf (s,
                            "; a step of %.3g from %s to %s, the latest film, exceeded the"
                            " acute limit %.3g: no later film confirms it yet",
                            y[r->unconfirmed_index] - y[r->unconfirmed_index - 1],
                            films[r->unconfirmed_index - 1].image_index,
                            films[r->unconfirmed_index].image_index, r->acute_limit);
  if (r->acute_index < 0 && r->unconfirmed_index < 0 && n > 1)
    g_string_append_printf (s, "; no single step exceeded the acute limit %.3g", r->acute_limit);
  if (r->event_index >= 0)
    g_string_append_printf (s, "; beyond the limit from %s on, confirmed%s",
                            films[r->event_index].image_index,
                            r->by_event ? " to the latest film" : "");
  g_string_append_printf (s, "; films %s to %s", films[0].image_index, films[n - 1].image_index);
  if (left)
    g_string_append_printf (s, "; left out: %s", left);
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

/* The films of series @fs[0..n) at which @sig has a value: their indexes
 * into @fs in @idx and the values in @y; none when the first film has
 * none (every signal is read against it). Returns how many. */
static int
series_values (CxrSignalReader *reader, const CxrSignal *sig, const CxrSeriesFilm *fs, int n,
               int *idx, double *y)
{
  int m = 0;
  for (int i = 0; i < n; i++)
    {
      double v;
      if (!cxr__signal_value (reader, sig, fs[0].scan_id, fs[i].scan_id, &v))
        {
          if (i == 0)
            return 0;
          continue;
        }
      idx[m] = i;
      y[m++] = v;
    }
  return m;
}

/* Films of the series left out of a signal, and why, or NULL. */
static char *
left_out (const CxrSignal *sig, const CxrSeriesFilm *fs, int n, const int *idx, int m)
{
  if (m == n)
    return NULL;
  const char *why = sig->missing_why;
  GString *s = g_string_new (NULL);
  for (int i = 0, k = 0; i < n; i++)
    {
      if (k < m && idx[k] == i)
        {
          k++;
          continue;
        }
      g_string_append_printf (s, "%s%s", s->len ? ", " : "", fs[i].image_index);
    }
  g_string_append_printf (s, " (%s)", why);
  return g_string_free (s, FALSE);
}

/* The limit a signal's flags use: the larger of the test-retest limit and
 * the visit-to-visit limit, and which it was. */
static double
limit_of (const CxrLimit *l, const char **source)
{
  gboolean visits = !isnan (l->visit_limit) && l->visit_limit > l->retest;
  *source = visits         ? (l->visit_reference ? "reference_visits" : "visits")
            : l->reference ? "reference"
                           : "retest";
  return visits ? l->visit_limit : l->retest;
}

/* The flags of one series (films @fs[0..n) of one view kind), one per
 * signal that has a limit and a value at its first film and at least one
 * more, appended to @flags. Returns whether one of them is
 * slow_progression, acute_change or unconfirmed_change. */
static gboolean
flag_series (CxrSignalReader *reader, const GPtrArray *signals, GHashTable *limits,
             const CxrSeriesFilm *fs, int n, const CxrProgressionOptions *o, GArray *flags)
{
  g_autofree double *t_all = g_new (double, n), *t = g_new (double, n), *y = g_new (double, n);
  g_autofree int *idx = g_new (int, n);
  g_autoptr (GArray) sub = g_array_new (FALSE, FALSE, sizeof (CxrSeriesFilm));
  const char *axis = time_axis (fs, n, t_all);
  gboolean flagged = FALSE;
  for (guint k = 0; k < signals->len; k++)
    {
      const CxrSignal *sig = signals->pdata[k];
      const CxrLimit *lim = g_hash_table_lookup (limits, sig->name);
      if (lim == NULL)
        continue;
      int m = series_values (reader, sig, fs, n, idx, y);
      if (m < 2)
        continue;
      g_array_set_size (sub, 0);
      for (int i = 0; i < m; i++)
        {
          t[i] = t_all[idx[i]];
          g_array_append_val (sub, fs[idx[i]]);
        }
      const CxrSeriesFilm *ss = (const CxrSeriesFilm *) (void *) sub->data;
      const char *source;
      double limit = limit_of (lim, &source);
      CxrTrendResult r;
      CxrTrendSignalFlags tf = (sig->from_baseline ? CXR_TREND_FROM_BASELINE : 0)
                               | (sig->rise_only ? CXR_TREND_RISE_ONLY : 0);
      cxr_progression_classify (t, y, m, limit, o->acute_factor * limit, tf, o, &r);
      int step = r.acute_index >= 0 ? r.acute_index : r.unconfirmed_index;
      gboolean shows_step
          = r.kind == CXR_TREND_ACUTE_CHANGE || r.kind == CXR_TREND_UNCONFIRMED_CHANGE;
      CxrFlagRow f = { g_strdup (sig->name),
                       g_strdup (fs[0].view_kind),
                       r.kind,
                       m,
                       ss[0].visit,
                       ss[m - 1].visit,
                       axis,
                       r.tau,
                       r.p_value,
                       r.slope,
                       r.slope_low,
                       r.slope_high,
                       limit,
                       r.acute_limit,
                       r.event_index >= 0 ? ss[r.event_index].visit : -1 };
      f.limit_source = source;
      f.step_from_visit = shows_step ? ss[step - 1].visit : -1;
      f.step_to_visit = shows_step ? ss[step].visit : -1;
      f.left_out = left_out (sig, fs, n, idx, m);
      f.evidence = evidence (sig, fs[0].view_kind, ss, y, m, axis, limit, source, &r, f.left_out);
      g_array_append_val (flags, f);
      flagged = flagged || r.kind == CXR_TREND_SLOW_PROGRESSION || r.kind == CXR_TREND_ACUTE_CHANGE
                || r.kind == CXR_TREND_UNCONFIRMED_CHANGE;
    }
  return flagged;
}

/* The end of the series that starts at film @a of @films (ordered by view
 * kind, then visit): the first film of another view kind. */
static guint
series_end (const GArray *films, guint a)
{
  const char *view = g_array_index (films, CxrSeriesFilm, a).view_kind;
  guint b = a;
  while (b < films->len && g_str_equal (g_array_index (films, CxrSeriesFilm, b).view_kind, view))
    b++;
  return b;
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
  for (guint a = 0, b; a < films->len; a = b)
    {
      const CxrSeriesFilm *fs = &g_array_index (films, CxrSeriesFilm, a);
      b = series_end (films, a);
      int n = (int) (b - a);
      if (n >= 2 && flag_series (reader, signals, limits, fs, n, o, flags))
        *flagged = TRUE;
    }
  return flags;
}

/* The visit-to-visit limits, over every series of the store, from at
 * least VISIT_PAIRS values (else NAN: too few to say). Most films of an
 * archive do not change, and the median ignores those that do.
 *
 * A signal read at each film (a probability): its change between
 * consecutive films, 1.96 x 1.4826 x the median absolute deviation.
 *
 * A distance from the series' first film (from_baseline): what the flags
 * compare with the limit is the distance itself, y[i] - y[0] = y[i], so
 * the limit is that of the distances: their median + 1.96 x 1.4826 x
 * MAD. The consecutive differences of a distance from the first film are
 * not a distance between two films (only the first of them is): on
 * series1024 the embedding's limit from the differences was 0.094, which
 * 62 of 150 later films' distances from their first exceed (median
 * 0.063); from the distances it is 0.137. */
#define VISIT_PAIRS 30

static gboolean
visit_limits (CxrStore *store, gint64 model_id, CxrSignalReader *reader, const GPtrArray *signals,
              const GPtrArray *patients, GHashTable *limits, const CxrReference *ref,
              GError **error)
{
  g_autoptr (GPtrArray) deltas = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  for (guint k = 0; k < signals->len; k++)
    g_ptr_array_add (deltas, g_array_new (FALSE, FALSE, sizeof (double)));
  for (guint pi = 0; pi < patients->len; pi++)
    {
      g_autoptr (GArray) films = cxr__store_frontal_series (store, patients->pdata[pi], error);
      if (films == NULL)
        return FALSE;
      g_autofree int *idx = g_new (int, MAX (films->len, 1));
      g_autofree double *y = g_new (double, MAX (films->len, 1));
      for (guint a = 0, b; a < films->len; a = b)
        {
          const CxrSeriesFilm *fs = &g_array_index (films, CxrSeriesFilm, a);
          b = series_end (films, a);
          for (guint k = 0; k < signals->len && b - a >= 2; k++)
            {
              const CxrSignal *sig = signals->pdata[k];
              int m = series_values (reader, sig, fs, (int) (b - a), idx, y);
              for (int i = 1; i < m; i++)
                {
                  double d = sig->from_baseline ? y[i] : y[i] - y[i - 1];
                  g_array_append_val (deltas->pdata[k], d);
                }
            }
        }
    }
  for (guint k = 0; k < signals->len; k++)
    {
      const CxrSignal *sig = signals->pdata[k];
      CxrLimit *lim = g_hash_table_lookup (limits, sig->name);
      GArray *d = deltas->pdata[k];
      if (lim == NULL)
        continue;
      const double *v = (const double *) (void *) d->data;
      lim->visit_pairs = (int) d->len;
      lim->visit_limit = NAN;
      lim->visit_reference = FALSE;
      /* too few pairs of its own: the reference cohort's */
      const CxrReferenceRow *r = ref->rows ? g_hash_table_lookup (ref->rows, sig->name) : NULL;
      if (d->len < VISIT_PAIRS && r && !isnan (r->visit_limit))
        {
          lim->visit_limit = r->visit_limit;
          lim->visit_reference = TRUE;
        }
      if (d->len >= VISIT_PAIRS)
        {
          double centre = 0;
          if (sig->from_baseline)
            {
              g_autofree double *w = g_memdup2 (v, d->len * sizeof (double));
              centre = cxr__median (w, d->len);
            }
          lim->visit_limit = centre + 1.96 * 1.4826 * cxr__mad (v, d->len);
        }
    }
  return cxr__store_write_visit_limits (store, model_id, limits, error);
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
  g_autoptr (CxrSignalReader) reader = cxr__signals_reader_new (store, model_id, error);
  if (reader == NULL)
    return FALSE;
  g_autoptr (GPtrArray) signals = cxr_signals_for_model (model);
  CxrReference ref;
  if (!cxr__reference_for (o, model, &ref, error))
    return FALSE;
  gboolean ok = visit_limits (store, model_id, reader, signals, patients, limits, &ref, error);
  cxr__reference_clear (&ref);
  if (!ok)
    return FALSE;
  for (guint pi = 0; pi < patients->len; pi++)
    {
      const char *pid = patients->pdata[pi];
      gboolean flagged;
      if (!cxr_shard_contains (&o->shard, pid))
        continue;
      g_autoptr (GArray) flags
          = flag_patient (store, reader, signals, limits, pid, o, &flagged, error);
      if (flags == NULL || !cxr__store_replace_flags (store, pid, flags, model_id, run_id, error))
        return FALSE;
      *n_flagged += flagged;
    }
  return TRUE;
}
