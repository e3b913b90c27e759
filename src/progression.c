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
 * Test-retest limits are derived, not guessed: cxr_progression_calibrate()
 * takes films from the store, makes re-posed and re-exposed copies of each
 * (rotation +-5 degrees, shift +-20 px, scale +-5 %, gain and gamma +-10 %),
 * and takes the 95th percentile of |signal(copy) - signal(film)| per
 * signal; for the trend score, the copy is registered and compared with
 * the film like any visit. A signal that the copies do not move at all
 * would get a limit of 0; each signal family has a floor at its
 * resolution instead (probability 0.01, embedding distance 0.01, trend
 * score 1, i.e. 0.01 above its threshold over 100 px^2). The acute
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

#include "cxr/diff.h"
#include "cxr/error.h"
#include "cxr/progression.h"
#include "cxr/register.h"
#include "cxr/trend.h"

#define CALIB_METHOD "reposed-copies/2 (+-5 deg, +-20 px, +-5 % scale, +-10 % gain and gamma; p95, floored)"

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
  struct { const char *key; double *d; int *i; double lo, hi; } keys[] = {
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

const char *
cxr_trend_kind_name (CxrTrendKind k)
{
  static const char *names[] = { "insufficient_visits", "stable", "slow_progression",
                                 "acute_change", "improving" };
  return names[k];
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
cxr_progression_classify (const double *t, const double *y, int n, double limit,
                          double acute_limit, gboolean from_baseline,
                          const CxrProgressionOptions *o, CxrTrendResult *out)
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

/* --- test-retest limits ---------------------------------------------------- */

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
p95 (GArray *v)
{
  if (v->len == 0)
    return NAN;
  g_array_sort (v, cmp_double);
  double pos = 0.95 * (v->len - 1);
  guint i = (guint) floor (pos);
  double f = pos - i;
  double a = g_array_index (v, double, i), b = g_array_index (v, double, MIN (i + 1, v->len - 1));
  return a + f * (b - a);
}

/**
 * cxr_progression_calibrate:
 * Derives and stores the test-retest limits of @model_id if the store has
 * none yet (see the top of this file). Needs at least one film.
 */
gboolean
cxr_progression_calibrate (CxrStore *store, const CxrModel *model, gint64 model_id,
                           const CxrProgressionOptions *o, GError **error)
{
  sqlite3_stmt *st = cxr_store_prepare (store,
      "SELECT count(*) FROM retest_limits WHERE model_id = ?", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, model_id);
  gboolean have = sqlite3_step (st) == SQLITE_ROW && sqlite3_column_int (st, 0) > 0;
  sqlite3_finalize (st);
  if (have)
    return TRUE;

  /* Films spread over the store: ordered by content hash, one per patient. */
  st = cxr_store_prepare (store,
      "SELECT path FROM (SELECT path, sha256, row_number() OVER (PARTITION BY patient_id"
      " ORDER BY sha256) AS r FROM frontal_scans) WHERE r = 1 ORDER BY sha256 LIMIT ?", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_int (st, 1, o->calib_films);
  GPtrArray *paths = g_ptr_array_new_with_free_func (g_free);
  while (sqlite3_step (st) == SQLITE_ROW)
    g_ptr_array_add (paths, g_strdup ((const char *) sqlite3_column_text (st, 0)));
  sqlite3_finalize (st);
  int nc = cxr_model_n_classes (model);
  GArray **prob = g_new (GArray *, nc);
  for (int c = 0; c < nc; c++)
    prob[c] = g_array_new (FALSE, FALSE, sizeof (double));
  GArray *emb = g_array_new (FALSE, FALSE, sizeof (double));
  GArray *chg = g_array_new (FALSE, FALSE, sizeof (double));
  GRand *rng = g_rand_new_with_seed (2017);
  for (guint f = 0; f < paths->len; f++)
    {
      g_autoptr (CxrImage) film = cxr_image_load (paths->pdata[f], NULL, NULL, NULL);
      if (film == NULL)
        continue;
      g_autoptr (CxrPrediction) pf = cxr_model_predict (model, film);
      double px = MAX (film->width, film->height) / 1024.0;
      for (int k = 0; k < o->calib_copies; k++)
        {
          CxrRegistration pose = { 0 };
          pose.scale = g_rand_double_range (rng, 0.95, 1.05);
          pose.angle_deg = g_rand_double_range (rng, -5, 5);
          pose.dx_px = g_rand_double_range (rng, -20, 20) * px;
          pose.dy_px = g_rand_double_range (rng, -20, 20) * px;
          g_autoptr (CxrImage) copy = cxr_register_warp (film, &pose, film->width, film->height);
          double gain = g_rand_double_range (rng, 0.9, 1.1), gamma = g_rand_double_range (rng, 0.9, 1.1);
          for (gsize i = 0; i < (gsize) copy->width * copy->height; i++)
            copy->data[i] = (float) CLAMP (gain * pow (CLAMP (copy->data[i], 0.f, 1.f), gamma), 0.0, 1.0);
          g_autoptr (CxrPrediction) pc = cxr_model_predict (model, copy);
          for (int c = 0; c < nc; c++)
            {
              double d = fabs (pc->probability[c] - pf->probability[c]);
              g_array_append_val (prob[c], d);
            }
          double e = cxr_model_cosine_distance (pf->embedding, pc->embedding, pf->dim, 1);
          g_array_append_val (emb, e);
          CxrRegistration r;
          CxrDiff d;
          if (cxr_register_pair (film, copy, NULL, &r, NULL) && r.status != CXR_REGISTER_FAILED
              && cxr_diff_pair (film, copy, &r, NAN, NULL, &d, NULL))
            {
              g_array_append_val (chg, d.trend_score);
              cxr_diff_clear (&d);
            }
        }
    }
  g_rand_free (rng);
  gboolean ok = emb->len > 0;
  if (!ok)
    g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                 "no readable frontal film to derive test-retest limits from");
  if (ok)
    ok = cxr_store_begin (store, error);
  st = ok ? cxr_store_prepare (store,
      "INSERT INTO retest_limits (model_id, signal, limit_value, n_copies, method) VALUES (?,?,?,?,?)",
      error) : NULL;
  ok = st != NULL;
  for (int c = -2; ok && c < nc; c++)
    {
      g_autofree char *sig = c == -2 ? g_strdup ("embedding_distance")
                             : c == -1 ? g_strdup ("trend_score")
                                       : g_strdup_printf ("probability:%s", cxr_model_class_name (model, c));
      GArray *v = c == -2 ? emb : c == -1 ? chg : prob[c];
      if (v->len == 0)
        continue;
      double floor_ = c == -1 ? 1.0 : 0.01; /* resolution floors, see the top of this file */
      sqlite3_bind_int64 (st, 1, model_id);
      sqlite3_bind_text (st, 2, sig, -1, SQLITE_TRANSIENT);
      sqlite3_bind_double (st, 3, MAX (p95 (v), floor_));
      sqlite3_bind_int (st, 4, (int) v->len);
      sqlite3_bind_text (st, 5, CALIB_METHOD, -1, SQLITE_STATIC);
      ok = sqlite3_step (st) == SQLITE_DONE;
      sqlite3_reset (st);
      if (!ok)
        cxr_store_set_error (store, error, "storing test-retest limits");
    }
  sqlite3_finalize (st);
  if (ok)
    ok = cxr_store_commit (store, error);
  else
    cxr_store_rollback (store);
  for (int c = 0; c < nc; c++)
    g_array_unref (prob[c]);
  g_free (prob);
  g_array_unref (emb);
  g_array_unref (chg);
  g_ptr_array_unref (paths);
  return ok;
}

/* --- flags ----------------------------------------------------------------- */

typedef struct {
  gint64 scan_id;
  int visit;
  double day;           /* NAN unknown */
  char *image_index;
  char *view_kind;
} Film;

static void
film_clear (gpointer p)
{
  Film *f = p;
  g_free (f->image_index);
  g_free (f->view_kind);
}

static char *
evidence (const char *signal, const char *view, const Film *films, const double *y, int n,
          const char *axis, double limit, double acute, const CxrTrendResult *r)
{
  GString *s = g_string_new (NULL);
  const char *what = g_str_has_prefix (signal, "probability:") ? signal + 12 : signal;
  gboolean prob = g_str_has_prefix (signal, "probability:");
  g_string_append_printf (s, "%s %s%s from %.3g to %.3g over %d %s films (visits %d-%d)", what,
                          prob ? "probability " : "",
                          y[n - 1] > y[0] ? "rose" : y[n - 1] < y[0] ? "fell" : "stayed",
                          y[0], y[n - 1], n, view, films[0].visit, films[n - 1].visit);
  if (!isnan (r->p_value))
    g_string_append_printf (s, "; Mann-Kendall tau %.2f, p = %.3g; Theil-Sen %.3g per %s [%.3g, %.3g]",
                            r->tau, r->p_value, r->slope, g_str_equal (axis, "days") ? "day" : "visit",
                            r->slope_low, r->slope_high);
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
  int nc = cxr_model_n_classes (model);
  /* limits */
  g_autoptr (GHashTable) limits = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  sqlite3_stmt *st = cxr_store_prepare (store,
      "SELECT signal, limit_value FROM retest_limits WHERE model_id = ?", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, model_id);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      double v = sqlite3_column_double (st, 1);
      g_hash_table_insert (limits, g_strdup ((const char *) sqlite3_column_text (st, 0)),
                           g_memdup2 (&v, sizeof v));
    }
  sqlite3_finalize (st);

  GPtrArray *patients = g_ptr_array_new_with_free_func (g_free);
  st = cxr_store_prepare (store, "SELECT patient_id FROM patients WHERE n_frontal >= 2", error);
  if (st == NULL)
    return FALSE;
  while (sqlite3_step (st) == SQLITE_ROW)
    g_ptr_array_add (patients, g_strdup ((const char *) sqlite3_column_text (st, 0)));
  sqlite3_finalize (st);

  sqlite3_stmt *films_st = cxr_store_prepare (store,
      "SELECT scan_id, visit, coalesce(julianday(study_date), day_offset), image_index, view_kind"
      "  FROM frontal_scans WHERE patient_id = ? ORDER BY view_kind, visit", error);
  sqlite3_stmt *prob_st = cxr_store_prepare (store,
      "SELECT probability FROM predictions WHERE scan_id = ? AND model_id = ? AND finding = ?", error);
  sqlite3_stmt *emb_st = cxr_store_prepare (store,
      "SELECT cosine_distance(a.vector, b.vector) FROM embeddings a, embeddings b"
      " WHERE a.scan_id = ? AND b.scan_id = ? AND a.model_id = ?3 AND b.model_id = ?3", error);
  sqlite3_stmt *chg_st = cxr_store_prepare (store,
      "SELECT c.trend_score FROM pair_changes c JOIN patient_series ps"
      "  ON ps.scan_id = c.moving_scan_id AND ps.baseline_scan_id = c.fixed_scan_id"
      " JOIN registrations r USING (fixed_scan_id, moving_scan_id, kind)"
      " WHERE c.fixed_scan_id = ? AND c.moving_scan_id = ? AND c.kind = 'baseline'"
      "   AND r.status = 'ok'", error);
  sqlite3_stmt *del_st = cxr_store_prepare (store,
      "DELETE FROM progression_flags WHERE patient_id = ?", error);
  sqlite3_stmt *ins = cxr_store_prepare (store,
      "INSERT INTO progression_flags (patient_id, signal, view_kind, kind, n_visits, first_visit,"
      " last_visit, time_axis, tau, p_value, slope, slope_low, slope_high, retest_limit,"
      " acute_limit, event_visit, evidence, model_id, run_id)"
      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", error);
  gboolean ok = films_st && prob_st && emb_st && chg_st && del_st && ins;
  *n_flagged = 0;
  for (guint pi = 0; ok && pi < patients->len; pi++)
    {
      const char *pid = patients->pdata[pi];
      GArray *films = g_array_new (FALSE, TRUE, sizeof (Film));
      g_array_set_clear_func (films, film_clear);
      sqlite3_bind_text (films_st, 1, pid, -1, SQLITE_STATIC);
      while (sqlite3_step (films_st) == SQLITE_ROW)
        {
          Film f = { sqlite3_column_int64 (films_st, 0), sqlite3_column_int (films_st, 1),
                     sqlite3_column_type (films_st, 2) == SQLITE_NULL ? NAN
                                                                        : sqlite3_column_double (films_st, 2),
                     g_strdup ((const char *) sqlite3_column_text (films_st, 3)),
                     g_strdup ((const char *) sqlite3_column_text (films_st, 4)) };
          g_array_append_val (films, f);
        }
      sqlite3_reset (films_st);
      ok = cxr_store_begin (store, error);
      sqlite3_bind_text (del_st, 1, pid, -1, SQLITE_STATIC);
      ok = ok && sqlite3_step (del_st) == SQLITE_DONE;
      sqlite3_reset (del_st);
      gboolean flagged = FALSE;
      /* one view kind at a time: films are ordered by view_kind, then visit */
      for (guint a = 0; ok && a < films->len;)
        {
          guint b = a;
          const Film *fa = &g_array_index (films, Film, a);
          while (b < films->len && g_str_equal (g_array_index (films, Film, b).view_kind, fa->view_kind))
            b++;
          int n = (int) (b - a);
          const Film *fs = &g_array_index (films, Film, a);
          if (n >= 2)
            {
              g_autofree double *t = g_new (double, n), *y = g_new (double, n);
              gboolean days = TRUE;
              for (int i = 0; i < n; i++)
                days = days && !isnan (fs[i].day) && (i == 0 || fs[i].day > fs[i - 1].day);
              for (int i = 0; i < n; i++)
                t[i] = days ? fs[i].day - fs[0].day : fs[i].visit;
              const char *axis = days ? "days" : "visit";
              for (int sig = -2; ok && sig < nc; sig++)
                {
                  g_autofree char *name = sig == -2 ? g_strdup ("embedding_distance")
                                          : sig == -1 ? g_strdup ("trend_score")
                                                      : g_strdup_printf ("probability:%s",
                                                                         cxr_model_class_name (model, sig));
                  const double *lim = g_hash_table_lookup (limits, name);
                  if (lim == NULL)
                    continue;
                  gboolean have = TRUE;
                  for (int i = 0; i < n && have; i++)
                    {
                      sqlite3_stmt *q = sig == -2 ? emb_st : sig == -1 ? chg_st : prob_st;
                      if (sig >= 0)
                        {
                          sqlite3_bind_int64 (q, 1, fs[i].scan_id);
                          sqlite3_bind_int64 (q, 2, model_id);
                          sqlite3_bind_text (q, 3, cxr_model_class_name (model, sig), -1, SQLITE_STATIC);
                        }
                      else if (i == 0 && sig == -1)
                        {
                          y[0] = 0;
                          continue;
                        }
                      else
                        {
                          sqlite3_bind_int64 (q, 1, fs[0].scan_id);
                          sqlite3_bind_int64 (q, 2, fs[i].scan_id);
                          if (sig == -2)
                            sqlite3_bind_int64 (q, 3, model_id);
                        }
                      have = sqlite3_step (q) == SQLITE_ROW && sqlite3_column_type (q, 0) != SQLITE_NULL;
                      if (have)
                        y[i] = sqlite3_column_double (q, 0);
                      sqlite3_reset (q);
                    }
                  if (!have)
                    continue;
                  CxrTrendResult r;
                  double acute = o->acute_factor * *lim;
                  cxr_progression_classify (t, y, n, *lim, acute, sig < 0, o, &r);
                  acute = r.acute_limit;
                  g_autofree char *ev = evidence (name, fa->view_kind, fs, y, n, axis, *lim, acute, &r);
                  int i = 1;
                  sqlite3_bind_text (ins, i++, pid, -1, SQLITE_STATIC);
                  sqlite3_bind_text (ins, i++, name, -1, SQLITE_STATIC);
                  sqlite3_bind_text (ins, i++, fa->view_kind, -1, SQLITE_STATIC);
                  sqlite3_bind_text (ins, i++, cxr_trend_kind_name (r.kind), -1, SQLITE_STATIC);
                  sqlite3_bind_int (ins, i++, n);
                  sqlite3_bind_int (ins, i++, fs[0].visit);
                  sqlite3_bind_int (ins, i++, fs[n - 1].visit);
                  sqlite3_bind_text (ins, i++, axis, -1, SQLITE_STATIC);
                  double v[] = { r.tau, r.p_value, r.slope, r.slope_low, r.slope_high, *lim, acute };
                  for (guint q = 0; q < G_N_ELEMENTS (v); q++, i++)
                    if (!isnan (v[q]))
                      sqlite3_bind_double (ins, i, v[q]);
                  if (r.event_index >= 0)
                    sqlite3_bind_int (ins, i, fs[r.event_index].visit);
                  i++;
                  sqlite3_bind_text (ins, i++, ev, -1, SQLITE_STATIC);
                  sqlite3_bind_int64 (ins, i++, model_id);
                  sqlite3_bind_int64 (ins, i++, run_id);
                  ok = sqlite3_step (ins) == SQLITE_DONE;
                  sqlite3_reset (ins);
                  sqlite3_clear_bindings (ins);
                  flagged = flagged || r.kind == CXR_TREND_SLOW_PROGRESSION
                            || r.kind == CXR_TREND_ACUTE_CHANGE;
                }
            }
          a = b;
        }
      if (ok)
        ok = cxr_store_commit (store, error);
      else
        {
          if (error && *error == NULL)
            cxr_store_set_error (store, error, "storing progression flags");
          cxr_store_rollback (store);
        }
      *n_flagged += flagged;
      g_array_unref (films);
    }
  sqlite3_finalize (films_st);
  sqlite3_finalize (prob_st);
  sqlite3_finalize (emb_st);
  sqlite3_finalize (chg_st);
  sqlite3_finalize (del_st);
  sqlite3_finalize (ins);
  g_ptr_array_unref (patients);
  return ok;
}
