/* SPDX-License-Identifier: MIT
 *
 * The analysis pipeline: registration, inference, difference maps and
 * progression flags over a store. The unit of work is one patient's
 * series: the calling thread (which owns the database connection) lists
 * the patients with pending work, gives each to a worker thread with
 * everything it needs (store-analysis.c: paths, and the registrations
 * already stored), and writes each patient's results in one transaction.
 * A killed run therefore leaves whole patients behind and a rerun picks up
 * the rest; patients could as well be sharded across machines by
 * patient_id. This file orchestrates; the work is done by the modules it
 * calls.
 *
 * Registration: every frontal film against the previous frontal film and
 * against the baseline film (fixed = the earlier film). Films are decoded
 * lazily and at most four are held per worker (film-cache.c), whatever
 * the length of the series.
 *
 * Inference (with a model): every frontal film without a result for that
 * model (matched by the model file's sha256) gets its embedding, one
 * probability per finding and the class activation maps, written in the
 * same per-patient transaction as the registrations.
 *
 * Difference maps: every registration that did not fail gets its maps and
 * change measures (diff.c), with the overlay PNG and the signed map under
 * DB.artifacts/pairs/ next to the database, referenced from pair_changes
 * by paths relative to DB.artifacts (so a store renamed with its folder
 * keeps its maps).
 *
 * Progression (with a model): once every patient's films are done, the
 * test-retest limits are derived if the store has none for the model, and
 * every patient's flags are recomputed (progression.c).
 *
 * Chains (transitivity, register-chain.c): how well the global transforms
 * of neighbouring films compose, stored as information; the film before
 * the previous one is registered with the new film (global stage only)
 * for that check alone.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "chain-private.h"
#include "cxr/error.h"
#include "cxr/pipeline.h"
#include "film-cache-private.h"
#include "store-private.h"
#include "util-private.h"

void
cxr_analyze_options_init (CxrAnalyzeOptions *o)
{
  static const CxrImageLimits lim = CXR_IMAGE_LIMITS_DEFAULT;
  memset (o, 0, sizeof *o);
  cxr_register_options_init (&o->reg);
  cxr_diff_options_init (&o->diff);
  cxr_progression_options_init (&o->progression);
  o->limits = lim;
  o->max_transitivity_px = 2.0;
}

void
cxr_analyze_summary_init (CxrAnalyzeSummary *s)
{
  memset (s, 0, sizeof *s);
  s->messages = g_ptr_array_new_with_free_func (g_free);
  s->run_id = -1;
}

void
cxr_analyze_summary_clear (CxrAnalyzeSummary *s)
{
  if (s->messages)
    g_ptr_array_unref (s->messages);
  s->messages = NULL;
}

/* A film to embed and score, and its prediction. */
typedef struct {
  CxrFilmRow row;
  CxrPrediction *pred;
  CxrSeverity *severity; /* with a zone-score head */
  double ms;
  char *error;
} Scored;

/* A film whose lung fields to store, and what was found (the mask is
 * written as the job runs; lungs keeps the numbers, not the mask). */
typedef struct {
  CxrFilmRow row;
  CxrLungFields lungs;
  char *mask_rel; /* the mask file, relative to STORE.artifacts */
  char *error;
} Lunged;

/* A pair to compare: one of this job's registrations, or a stored one. */
typedef struct {
  const CxrPairRow *row;
  const CxrRegistration *reg;
  CxrDiff diff;     /* its map dropped once written */
  double map_scale; /* of the map written (NAN: none) */
  gboolean done;
  char *error;
} Cmp;

typedef struct {
  char *patient_id;
  GArray *pairs;             /* CxrSeriesPair, in visit order */
  GArray *stored;            /* CxrSeriesStored: the patient's earlier registrations */
  GArray *films;             /* Scored */
  GArray *lunged;            /* Lunged */
  GArray *maps;              /* CxrPairRow: stored pairs whose map is still to make */
  GArray *cmps;              /* Cmp: difference maps to make */
  char *artifacts;           /* folder for the pair files, or NULL */
  const char *artifacts_rel; /* the same, relative to the store's artifacts folder */
  char *lung_dir;            /* folder for the lung masks (STORE.artifacts/lungs) */
  const CxrAnalyzeOptions *opt;
} PatientJob;

static void
scored_clear (gpointer p)
{
  Scored *f = p;
  cxr__film_row_clear (&f->row);
  cxr_prediction_free (f->pred);
  cxr_severity_free (f->severity);
  g_free (f->error);
}

static void
lunged_clear (gpointer p)
{
  Lunged *l = p;
  cxr__film_row_clear (&l->row);
  g_free (l->mask_rel);
  g_free (l->error);
}

static void
cmp_clear (gpointer p)
{
  Cmp *c = p;
  g_free (c->error);
  cxr_diff_clear (&c->diff);
}

static void
job_free (PatientJob *j)
{
  g_free (j->patient_id);
  g_array_unref (j->pairs);
  g_array_unref (j->stored);
  g_array_unref (j->films);
  g_array_unref (j->lunged);
  g_array_unref (j->maps);
  g_array_unref (j->cmps);
  g_free (j->artifacts);
  g_free (j->lung_dir);
  g_free (j);
}

/* This job's prediction of a film, or NULL when it has none (stored
 * earlier, or the film could not be read). */
static const CxrPrediction *
film_prediction (const PatientJob *j, gint64 scan_id)
{
  for (guint k = 0; k < j->films->len; k++)
    {
      const Scored *f = &g_array_index (j->films, Scored, k);
      if (f->row.scan_id == scan_id)
        return f->pred;
    }
  return NULL;
}

/* A film stored upside down. Where a pair does not line up, MOVING
 * turned half a turn is registered too (the global stage); if it lines up
 * better that way by ORIENT_MARGIN of NCC after the global stage (in
 * FIXED's lung fields), the pair is not registered as if both were
 * upright: it fails with the reason, and MOVING is marked upside down
 * unless FIXED is (then MOVING is the upright one). The margin: on 67
 * same-view series1024 pairs of upright films, their later film turned
 * lined up better by 0.15 or more in 65, the films as stored never did
 * (bench/orientation.py has the held-out figures). Left-right mirroring
 * is not looked for: chest films are too nearly symmetric for it (a
 * mirrored later film lined up worse by 0.15 in only 29 of the 67).
 *
 * A pair lines up with the later film turned for two reasons: that film
 * is upside down, or the pair lines up with nothing (the as-stored
 * registration fell into a wrong optimum, a whited-out or rotated film, a
 * different patient) and the turned try scored higher by chance: on
 * patients outside ../shared 1 upright film of about 100 was marked that
 * way. And the registration says that one film of the two is turned, not
 * which: with the first film of a series turned, every later film was
 * marked (the first film has no earlier film to be found by). So the
 * films must say so themselves: the lung segmenter, trained on upright
 * films, sees the lungs of a film turned with a higher quality than as
 * stored (the gain), and the film marked is the one whose gain is
 * positive and the larger of the two; where neither film's is positive,
 * nothing is marked. On series1024's 196 upright films turning lowers the
 * quality by 0.094 (median; -0.228 to +0.113, positive for 6): alone it
 * would be a poor detector (the doc's 8 false alarms in 196), but it only
 * has to say which film of a pair the registration already found turned.
 * Without a lung model the NCC alone decides, and the later film is
 * marked. */
#define ORIENT_MARGIN  0.15
/* Only pairs that line up this poorly after the global stage are tried:
 * every pair to a turned film of bench/orientation.py (80) did, a third of
 * the upright pairs that are not ok (24 of 79) do, so the check costs a
 * registration for about one pair in twelve. */
#define ORIENT_TRIGGER 0.7

/* Whether the pair's lungs line up, the status rule without its
 * confidence: the orientation check was chosen and measured on pairs
 * that fail this (bench/orientation.py), and the calibrated confidence,
 * which demotes pairs whose lungs do overlap, would widen it to pairs
 * where it raised a false alarm (00000766_017 of series1024). */
static gboolean
lungs_line_up (const CxrRegistration *r, const CxrRegisterOptions *ro)
{
  if (r->status == CXR_REGISTER_FAILED)
    return FALSE;
  if (!isnan (r->lung_dice_after))
    return r->lung_dice_after >= ro->ok_dice;
  return r->global_confidence >= ro->ok_confidence && r->asymmetry_px <= 4;
}

static const char reason_upside_down[]
    = "the later film lines up with the earlier one turned half a turn: stored upside down";
static const char reason_fixed_upside_down[]
    = "the earlier film is stored upside down (see its own pairs)";

/* The first of the job's pairs that found film @scan_id upside down (as
 * its later or its earlier film), or -1. */
static int
first_upside_down (const PatientJob *j, gint64 scan_id)
{
  for (guint k = 0; k < j->pairs->len; k++)
    {
      const CxrSeriesPair *q = &g_array_index (j->pairs, CxrSeriesPair, k);
      if ((q->upside_down && q->row.moving_id == scan_id)
          || (q->fixed_upside_down && q->row.fixed_id == scan_id))
        return (int) k;
    }
  return -1;
}

/* How much better the lung segmenter sees the lungs of a film turned
 * (@turned) than as stored (@lungs): > 0 where the film looks upside down
 * to it; NAN where it finds none. */
static double
turned_gain (const CxrLungModel *model, const CxrImage *turned, const CxrLungFields *lungs)
{
  g_autoptr (CxrLungFields) seen = cxr_lungs_segment (model, turned, NULL);
  return seen ? seen->quality - lungs->quality : NAN;
}

static void
check_upside_down (PatientJob *j, CxrFilmCache *films, CxrSeriesPair *p)
{
  const CxrPairRow *r = &p->row;
  const CxrImage *mi
      = cxr__film_cache_image (films, r->moving_id, r->moving_path, r->moving_sha256, NULL);
  const CxrLungFields *ml
      = mi ? cxr__film_cache_lungs (films, r->moving_id, r->moving_path, r->moving_sha256, NULL)
           : NULL;
  const CxrRegisterFilm *F = mi ? cxr__film_cache_prepared (films, r->fixed_id, r->fixed_path,
                                                            r->fixed_sha256, r->fixed_aspect, NULL)
                                : NULL;
  if (F == NULL)
    return;
  g_autoptr (CxrImage) turned = cxr_image_rotate_180 (mi);
  g_autoptr (CxrLungFields) tl
      = ml && ml->status == CXR_LUNGS_OK ? cxr_lung_fields_rotate_180 (ml) : NULL;
  CxrRegisterOptions g = j->opt->reg;
  g.no_deform = TRUE;
  g_autoptr (CxrRegisterFilm) T
      = cxr_register_film_new_lungs (turned, r->moving_aspect, tl, &g, NULL);
  CxrRegistration alt;
  if (T == NULL || !cxr_register_films (F, T, &g, &alt, NULL))
    return;
  double as_stored = isnan (p->reg.ncc_global) ? p->reg.ncc_before : p->reg.ncc_global;
  if (!(alt.ncc_global > (isnan (as_stored) ? -1.0 : as_stored) + ORIENT_MARGIN))
    return;
  gboolean fixed_turned = first_upside_down (j, r->fixed_id) >= 0;
  /* the second witness: the films themselves (see ORIENT_MARGIN) */
  if (!fixed_turned && j->opt->lung_model && ml)
    {
      /* MOVING's first: asking the cache for FIXED must not leave @ml
       * dangling */
      double gm = turned_gain (j->opt->lung_model, turned, ml);
      const CxrImage *fi
          = cxr__film_cache_image (films, r->fixed_id, r->fixed_path, r->fixed_sha256, NULL);
      const CxrLungFields *fl
          = fi ? cxr__film_cache_lungs (films, r->fixed_id, r->fixed_path, r->fixed_sha256, NULL)
               : NULL;
      g_autoptr (CxrImage) fturned = fl ? cxr_image_rotate_180 (fi) : NULL;
      double gf = fturned ? turned_gain (j->opt->lung_model, fturned, fl) : NAN;
      if (gm > 0 && !(gf >= gm))
        ; /* the later film */
      else if (gf > 0 && !(gm >= gf))
        p->fixed_upside_down = fixed_turned = TRUE;
      else
        return; /* neither looks better turned: the pair lines up with nothing */
    }
  p->upside_down = !fixed_turned;
  p->reg.status = CXR_REGISTER_FAILED;
  p->reg.reason = fixed_turned ? reason_fixed_upside_down : reason_upside_down;
}

/* Registers pair @p of the job, and the skip the chains need while its
 * films are at hand. */
static void
register_pair (PatientJob *j, CxrFilmCache *films, CxrSeriesPair *p)
{
  const CxrRegisterOptions *ro = &j->opt->reg;
  const CxrPairRow *r = &p->row;
  p->transitivity_px = p->chain_prev_px = NAN;
  g_autoptr (GError) err = NULL;
  /* the film returned last is never evicted, so F stays valid */
  const CxrRegisterFilm *F = cxr__film_cache_prepared (films, r->fixed_id, r->fixed_path,
                                                       r->fixed_sha256, r->fixed_aspect, &err);
  const CxrRegisterFilm *M = F ? cxr__film_cache_prepared (films, r->moving_id, r->moving_path,
                                                           r->moving_sha256, r->moving_aspect, &err)
                               : NULL;
  if (M == NULL || !cxr_register_films (F, M, ro, &p->reg, &err))
    {
      p->error = g_strdup (err ? err->message : "registration failed");
      memset (&p->reg, 0, sizeof p->reg);
      p->reg.status = CXR_REGISTER_FAILED;
      p->reg.reason = "film could not be read";
      return;
    }
  const CxrImage *m
      = cxr__film_cache_image (films, r->moving_id, r->moving_path, r->moving_sha256, NULL);
  p->norm = 1024.0 / MAX (m->width, m->height);
  if (!j->opt->no_orientation_check && !lungs_line_up (&p->reg, ro) && !r->cross_view
      && !(p->reg.ncc_global >= ORIENT_TRIGGER))
    check_upside_down (j, films, p);
  const CxrPairRow *a;
  if (!r->is_previous || (a = cxr__chain_skip_needed (j->pairs, j->stored, p)) == NULL)
    return;
  M = cxr__film_cache_prepared (films, r->moving_id, r->moving_path, r->moving_sha256,
                                r->moving_aspect, NULL);
  const CxrRegisterFilm *A
      = M ? cxr__film_cache_prepared (films, a->fixed_id, a->fixed_path, a->fixed_sha256,
                                      cxr__chain_fixed_aspect (a), NULL)
          : NULL;
  /* the chain composes global transforms: no deformable stage */
  CxrRegisterOptions global = *ro;
  global.no_deform = TRUE;
  p->has_skip = A && cxr_register_films (A, M, &global, &p->skip, NULL);
}

static void
score_film (PatientJob *j, CxrFilmCache *films, Scored *f)
{
  g_autoptr (GError) err = NULL;
  const CxrImage *im
      = cxr__film_cache_image (films, f->row.scan_id, f->row.path, f->row.sha256, &err);
  if (im == NULL)
    {
      f->error = g_strdup (err->message);
      return;
    }
  gint64 t0 = g_get_monotonic_time ();
  f->pred = cxr_model_predict (j->opt->model, im);
  f->ms = (g_get_monotonic_time () - t0) / 1000.0;
  /* the film's lung fields were found at this visit, before it: cached */
  if (j->opt->severity)
    f->severity = cxr_severity_measure (
        j->opt->severity, im,
        cxr__film_cache_lungs (films, f->row.scan_id, f->row.path, f->row.sha256, NULL), f->pred,
        NULL);
}

/* The lung fields of the films without them, and their masks written
 * (255 lung) as STORE.artifacts/lungs/IMAGE_INDEX.mask.png, made safe. */
static void
find_lungs (PatientJob *j, CxrFilmCache *films, Lunged *f)
{
  g_autoptr (GError) err = NULL;
  const CxrLungFields *l
      = cxr__film_cache_lungs (films, f->row.scan_id, f->row.path, f->row.sha256, &err);
  if (l == NULL)
    {
      f->error = g_strdup (err ? err->message : "no lung fields");
      return;
    }
  f->lungs = *l;
  f->lungs.mask = NULL;
  gsize n = (gsize) l->width * l->height;
  g_autofree guint8 *px = g_new (guint8, n);
  for (gsize i = 0; i < n; i++)
    px[i] = l->mask[i] ? 255 : 0;
  g_autofree char *safe = cxr__safe_name (f->row.image_index);
  g_autofree char *file = g_strdup_printf ("%s.mask.png", safe);
  g_autofree char *path = g_build_filename (j->lung_dir, file, NULL);
  if (!cxr_image_save_png8 (px, l->width, l->height, 1, path, 1, &err))
    f->error = g_strdup (err->message);
  else
    f->mask_rel = g_strdup_printf ("lungs/%s", file);
}

/* The one name of a pair's difference map: @dir (the pairs' folder, as
 * written to or as stored, relative to STORE.artifacts) and the pair's
 * stem. */
static char *
pair_map_name (const char *dir, const char *stem)
{
  return g_strdup_printf ("%s/%s.map.png", dir, stem);
}

static void
compare_pair (PatientJob *j, CxrFilmCache *films, Cmp *c)
{
  const CxrPairRow *r = c->row;
  if (c->reg->status == CXR_REGISTER_FAILED)
    return;
  g_autoptr (GError) err = NULL;
  const CxrImage *f
      = cxr__film_cache_image (films, r->fixed_id, r->fixed_path, r->fixed_sha256, &err);
  const CxrImage *m
      = f ? cxr__film_cache_image (films, r->moving_id, r->moving_path, r->moving_sha256, &err)
          : NULL;
  CxrDiffOptions dopt = j->opt->diff;
  dopt.model = j->opt->model;
  CxrDiffInputs din = { film_prediction (j, r->fixed_id), film_prediction (j, r->moving_id) };
  /* the pair's films stay in the cache's two last slots: their lungs too */
  din.fixed_lungs
      = m ? cxr__film_cache_lungs (films, r->fixed_id, r->fixed_path, r->fixed_sha256, NULL) : NULL;
  din.moving_lungs
      = m ? cxr__film_cache_lungs (films, r->moving_id, r->moving_path, r->moving_sha256, NULL)
          : NULL;
  if (m && dopt.region == CXR_DIFF_REGION_WHOLE_LUNG)
    din.fixed_cavity = cxr__film_cache_cavity (films, r->fixed_id, r->fixed_path, r->fixed_sha256);
  /* the maps follow the global transform unless map_deform: the field
   * bends around a growing nodule and erases its growth (see
   * pipeline.h) */
  CxrRegistration mreg = *c->reg;
  if (!j->opt->map_deform)
    mreg.field.nx = mreg.field.ny = 0;
  c->map_scale = NAN;
  if (!m || !cxr_diff_pair (f, m, &mreg, r->fixed_spacing_mm, &din, &dopt, &c->diff, &err))
    {
      c->error = g_strdup (err ? err->message : "difference map failed");
      return;
    }
  /* the map is written now and dropped: a patient's pairs are stored
   * together, and a long series would hold every map till then */
  g_autofree char *png = j->artifacts ? pair_map_name (j->artifacts, r->stem) : NULL;
  if (png && isnan (c->map_scale = cxr_diff_write_map (&c->diff, png, &err)))
    {
      c->error = g_strdup (err->message);
      cxr_diff_clear (&c->diff);
      return;
    }
  g_clear_pointer (&c->diff.map, g_free);
  c->done = TRUE;
}

/* One sweep over the patient's films in visit order, so that each film is
 * decoded (and its lung fields found) once: at each visit its lung fields
 * and its prediction, then the pairs that end at it, registered and
 * compared while their films are in the cache (which keeps the first film
 * loaded, the baseline, and the last three). The chain checks need every
 * registration, and come last; they change statuses, not transforms. */
static void
worker (gpointer data, gpointer user_data)
{
  PatientJob *j = data;
  GAsyncQueue *done = user_data;
  CxrFilmCache films;
  cxr__film_cache_init (&films, &j->opt->limits, &j->opt->reg, j->opt->lung_model);
  g_autoptr (GArray) visits = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint k = 0; k < j->lunged->len; k++)
    g_array_append_val (visits, g_array_index (j->lunged, Lunged, k).row.visit);
  for (guint k = 0; k < j->films->len; k++)
    g_array_append_val (visits, g_array_index (j->films, Scored, k).row.visit);
  for (guint k = 0; k < j->pairs->len; k++)
    g_array_append_val (visits, g_array_index (j->pairs, CxrSeriesPair, k).row.moving_visit);
  for (guint k = 0; k < j->cmps->len; k++)
    g_array_append_val (visits, g_array_index (j->cmps, Cmp, k).row->moving_visit);
  g_array_sort (visits, cxr__cmp_int);
  for (guint v = 0; v < visits->len; v++)
    {
      int visit = g_array_index (visits, int, v);
      if (v > 0 && visit == g_array_index (visits, int, v - 1))
        continue;
      for (guint k = 0; k < j->lunged->len; k++)
        if (g_array_index (j->lunged, Lunged, k).row.visit == visit)
          find_lungs (j, &films, &g_array_index (j->lunged, Lunged, k));
      for (guint k = 0; k < j->films->len; k++)
        if (g_array_index (j->films, Scored, k).row.visit == visit)
          score_film (j, &films, &g_array_index (j->films, Scored, k));
      for (guint k = 0; k < j->pairs->len; k++)
        if (g_array_index (j->pairs, CxrSeriesPair, k).row.moving_visit == visit)
          register_pair (j, &films, &g_array_index (j->pairs, CxrSeriesPair, k));
      for (guint k = 0; k < j->cmps->len; k++)
        if (g_array_index (j->cmps, Cmp, k).row->moving_visit == visit)
          compare_pair (j, &films, &g_array_index (j->cmps, Cmp, k));
    }
  cxr__chain_check (j->pairs, j->stored);
  cxr__film_cache_clear (&films);
  g_async_queue_push (done, j);
}

static void note (CxrAnalyzeSummary *s, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
note (CxrAnalyzeSummary *s, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  cxr__messages_addv (s->messages, &s->n_messages, 50, fmt, ap);
  va_end (ap);
}

static const char *const kinds[2] = { "previous", "baseline" };

static gboolean
write_cmps (PatientJob *j, CxrAnalysisWriter *w, CxrAnalyzeSummary *s, GError **error)
{
  for (guint k = 0; k < j->cmps->len; k++)
    {
      Cmp *c = &g_array_index (j->cmps, Cmp, k);
      const CxrPairRow *r = c->row;
      if (c->error)
        note (s, "patient %s: difference map %s: %s", j->patient_id, r->stem, c->error);
      if (!c->done)
        continue;
      g_autofree char *png = j->artifacts ? pair_map_name (j->artifacts_rel, r->stem) : NULL;
      for (int kind = 0; kind < 2; kind++)
        if ((kind == 0 ? r->is_previous : r->is_baseline)
            && !cxr__analysis_write_change (w, r->fixed_id, r->moving_id, kinds[kind], &c->diff,
                                            NULL, png, c->map_scale, CXR_DIFF_METHOD, error))
          return FALSE;
      s->n_diffs++;
      s->diff_ms += c->diff.elapsed_ms;
    }
  return TRUE;
}

static gboolean
write_films (PatientJob *j, CxrAnalysisWriter *w, CxrAnalyzeSummary *s, GError **error)
{
  for (guint k = 0; k < j->films->len; k++)
    {
      Scored *f = &g_array_index (j->films, Scored, k);
      if (f->error)
        {
          note (s, "patient %s: %s", j->patient_id, f->error);
          continue;
        }
      if (!cxr__analysis_write_prediction (w, f->row.scan_id, f->pred, error)
          || (f->severity && !cxr__analysis_write_severity (w, f->row.scan_id, f->severity, error)))
        return FALSE;
      s->n_inferred++;
      s->infer_ms += f->ms;
      if (f->severity)
        {
          s->n_severity++;
          s->n_severity_implausible += f->severity->status != CXR_SEVERITY_OK;
          s->severity_ms += f->severity->elapsed_ms;
        }
    }
  return TRUE;
}

static gboolean
write_lungs (PatientJob *j, CxrAnalysisWriter *w, CxrAnalyzeSummary *s, GError **error)
{
  for (guint k = 0; k < j->lunged->len; k++)
    {
      Lunged *f = &g_array_index (j->lunged, Lunged, k);
      if (f->error)
        {
          note (s, "patient %s: lung fields: %s", j->patient_id, f->error);
          if (f->mask_rel == NULL && f->lungs.width == 0)
            continue;
        }
      /* mm^2 from the pixel's width and height in the patient */
      double px_mm2 = f->row.spacing_mm * f->row.spacing_mm * f->row.aspect;
      CxrLungRow row = { &f->lungs, f->lungs.right_area_px * px_mm2, f->lungs.left_area_px * px_mm2,
                         f->mask_rel };
      if (!cxr__analysis_write_lungs (w, f->row.scan_id, &row, error))
        return FALSE;
      s->n_lungs++;
      s->n_lungs_implausible += f->lungs.status != CXR_LUNGS_OK;
      s->lungs_ms += f->lungs.elapsed_ms;
    }
  return TRUE;
}

static gboolean
write_pairs (PatientJob *j, CxrAnalysisWriter *w, CxrAnalyzeSummary *s, GError **error)
{
  for (guint k = 0; k < j->pairs->len; k++)
    {
      CxrSeriesPair *p = &g_array_index (j->pairs, CxrSeriesPair, k);
      const CxrRegistration *r = &p->reg;
      if (p->error)
        note (s, "patient %s: %s", j->patient_id, p->error);
      for (int kind = 0; kind < 2; kind++)
        {
          if (!(kind == 0 ? p->row.is_previous : p->row.is_baseline))
            continue;
          double chain = kind == 1 ? p->transitivity_px : p->chain_prev_px;
          if (!cxr__analysis_write_registration (w, &p->row, kinds[kind], r, chain, p->error,
                                                 CXR_REGISTER_METHOD, error))
            return FALSE;
          s->n_pairs++;
          s->n_ok += r->status == CXR_REGISTER_OK;
          s->n_low += r->status == CXR_REGISTER_LOW_CONFIDENCE;
          s->n_failed += r->status == CXR_REGISTER_FAILED;
          s->n_cross_view += p->row.cross_view;
          s->n_intransitive += chain > j->opt->max_transitivity_px;
        }
      s->register_ms += r->elapsed_ms + (p->has_skip ? p->skip.elapsed_ms : 0);
      /* a film found turned is written and counted once, by its first pair */
      gint64 turned = p->upside_down         ? p->row.moving_id
                      : p->fixed_upside_down ? p->row.fixed_id
                                             : -1;
      if (turned >= 0 && first_upside_down (j, turned) == (int) k)
        {
          if (!cxr__analysis_write_orientation (w, turned, "upside_down", error))
            return FALSE;
          s->n_upside_down++;
        }
    }
  return TRUE;
}

/* One patient's results, in one transaction. */
static gboolean
write_job (CxrStore *store, PatientJob *j, CxrAnalysisWriter *w, CxrAnalyzeSummary *s,
           GError **error)
{
  if (!cxr_store_begin (store, error))
    return FALSE;
  if (!write_films (j, w, s, error) || !write_lungs (j, w, s, error)
      || !write_pairs (j, w, s, error) || !write_cmps (j, w, s, error))
    {
      cxr_store_rollback (store);
      return FALSE;
    }
  return cxr_store_commit (store, error);
}

/* Everything a worker needs for one patient, read on the calling thread. */
static PatientJob *
load_job (CxrStore *store, const char *patient_id, const CxrAnalyzeOptions *opt,
          const CxrModelIds *ids, GError **error)
{
  CxrPatientWork work;
  cxr__patient_work_init (&work);
  if (!cxr__store_load_work (store, patient_id, ids, !opt->no_diff, &work, error))
    {
      cxr__patient_work_clear (&work);
      return NULL;
    }
  PatientJob *j = g_new0 (PatientJob, 1);
  j->patient_id = g_strdup (patient_id);
  j->opt = opt;
  j->pairs = g_array_new (FALSE, TRUE, sizeof (CxrSeriesPair));
  g_array_set_clear_func (j->pairs, cxr__series_pair_clear);
  j->stored = g_array_new (FALSE, TRUE, sizeof (CxrSeriesStored));
  g_array_set_clear_func (j->stored, cxr__series_stored_clear);
  j->films = g_array_new (FALSE, TRUE, sizeof (Scored));
  g_array_set_clear_func (j->films, scored_clear);
  j->lunged = g_array_new (FALSE, TRUE, sizeof (Lunged));
  g_array_set_clear_func (j->lunged, lunged_clear);
  j->cmps = g_array_new (FALSE, TRUE, sizeof (Cmp));
  g_array_set_clear_func (j->cmps, cmp_clear);
  /* the rows move into the job's own structs (their strings with them) */
  for (guint k = 0; k < work.pending->len; k++)
    {
      CxrSeriesPair p = { g_array_index (work.pending, CxrPairRow, k) };
      g_array_append_val (j->pairs, p);
    }
  for (guint k = 0; k < work.stored->len; k++)
    {
      CxrSeriesStored st = { g_array_index (work.stored, CxrPairRow, k) };
      g_array_append_val (j->stored, st);
    }
  for (guint k = 0; k < work.films->len; k++)
    {
      Scored f = { g_array_index (work.films, CxrFilmRow, k) };
      g_array_append_val (j->films, f);
    }
  for (guint k = 0; k < work.lung_films->len; k++)
    {
      Lunged f = { g_array_index (work.lung_films, CxrFilmRow, k) };
      g_array_append_val (j->lunged, f);
    }
  g_array_set_clear_func (work.pending, NULL);
  g_array_set_clear_func (work.stored, NULL);
  g_array_set_clear_func (work.films, NULL);
  g_array_set_clear_func (work.lung_films, NULL);
  j->maps = g_steal_pointer (&work.maps);
  cxr__patient_work_clear (&work);
  /* the comparisons: this job's new pairs, and stored pairs without a map */
  if (!opt->no_diff)
    {
      for (guint k = 0; k < j->pairs->len; k++)
        {
          CxrSeriesPair *p = &g_array_index (j->pairs, CxrSeriesPair, k);
          Cmp c = { &p->row, &p->reg };
          g_array_append_val (j->cmps, c);
        }
      for (guint k = 0; k < j->maps->len; k++)
        {
          const CxrPairRow *r = &g_array_index (j->maps, CxrPairRow, k);
          Cmp c = { r, &r->stored };
          g_array_append_val (j->cmps, c);
        }
    }
  return j;
}

/* STORE.artifacts/@sub next to the store, created (for its owner only:
 * it holds patient data); and @sub, relative to STORE.artifacts. */
static gboolean
artifacts_dir (CxrStore *store, const char *sub, char **abs, char **rel, GError **error)
{
  g_autofree char *top = cxr_store_artifacts_dir (store);
  *abs = g_build_filename (top, sub, NULL);
  if (rel)
    *rel = g_strdup (sub);
  if (g_mkdir_with_parents (*abs, 0700) != 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot create: %s", *abs,
                   g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/* The models' rows. */
static gint64
classifier_row (CxrStore *store, const CxrModel *m, GError **error)
{
  GString *cls = g_string_new (NULL);
  for (int c = 0; c < cxr_model_n_classes (m); c++)
    g_string_append_printf (cls, "%s%s", c ? "|" : "", cxr_model_class_name (m, c));
  g_autofree char *meta = cxr_model_metadata_json (m);
  CxrModelRow r = {
    cxr_model_name (m),       cxr_model_architecture (m), cxr_model_sha256 (m), cls->str, meta,
    cxr_model_input_size (m), cxr_model_embedding_dim (m)
  };
  gint64 id = cxr__store_model_row (store, &r, error);
  g_string_free (cls, TRUE);
  return id;
}

static gint64
lung_model_row (CxrStore *store, const CxrLungModel *m, GError **error)
{
  CxrModelRow r = { cxr_lung_model_name (m),
                    "cxr-lungnet",
                    cxr_lung_model_sha256 (m),
                    "lung",
                    cxr_lung_model_metadata_json (m),
                    cxr_lung_model_input_size (m),
                    0 };
  return cxr__store_model_row (store, &r, error);
}

static gint64
severity_model_row (CxrStore *store, const CxrSeverityModel *m, GError **error)
{
  g_autofree char *meta
      = g_strdup_printf ("{\"classifier_sha256\": \"%s\"}", cxr_severity_model_classifier (m));
  CxrModelRow r = { cxr_severity_model_name (m),
                    "cxr-brixia-ridge",
                    cxr_severity_model_sha256 (m),
                    "A|B|C|D|E|F",
                    meta,
                    0,
                    0 };
  return cxr__store_model_row (store, &r, error);
}

/**
 * cxr_pipeline_calibrate:
 * `cxrtrack calibrate`: the test-retest limits of @opt->model, derived
 * from the store's films (calibrate.c; again, with @force, when it has
 * them), or copied from @opt->limits_from, then every patient flagged
 * against them, as one run.
 */
gboolean
cxr_pipeline_calibrate (CxrStore *store, const CxrAnalyzeOptions *opt, gboolean force,
                        GError **error)
{
  g_return_val_if_fail (store != NULL && opt != NULL && opt->model != NULL, FALSE);
  if (!cxr_store_lock (store, "calibrate", error))
    return FALSE;
  gint64 run = cxr_store_run_begin (store, "calibrate", opt->argv, error);
  if (run < 0)
    return FALSE;
  gint64 model_id = classifier_row (store, opt->model, error);
  CxrProgressionOptions po = opt->progression;
  po.map_region = opt->diff.region;
  gboolean ok = model_id > 0
                && (opt->lung_model == NULL || lung_model_row (store, opt->lung_model, error) > 0);
  if (ok && opt->limits_from)
    ok = cxr__store_copy_limits (store, opt->limits_from, model_id, error) >= 0;
  else if (ok)
    ok = (!force || cxr__store_delete_limits (store, model_id, error))
         && cxr_progression_calibrate (store, opt->model, opt->lung_model, opt->severity, model_id,
                                       &po, error);
  /* the flags were made against the limits before: made again (which also
   * derives the visit-to-visit limits) */
  guint64 n_flagged = 0;
  if (ok)
    ok = cxr_progression_flag_all (store, opt->model, model_id, &opt->progression, run, &n_flagged,
                                   error);
  cxr_store_run_end (store, run, ok, NULL);
  return ok;
}

/**
 * cxr_pipeline_analyze:
 * Everything `cxrtrack analyze` does, patient by patient: registers every
 * pending pair of frontal films, scores every film the model has not
 * seen, makes the difference maps still missing, then derives the
 * test-retest limits (once per model) and recomputes every patient's
 * progression flags. Problems with single films are counted and noted in
 * @summary; only database errors return %FALSE.
 */
gboolean
cxr_pipeline_analyze (CxrStore *store, const CxrAnalyzeOptions *opt, CxrAnalyzeSummary *s,
                      GError **error)
{
  g_return_val_if_fail (store != NULL && opt != NULL && s != NULL, FALSE);
  if (s->messages == NULL)
    cxr_analyze_summary_init (s);
  gint64 t0 = g_get_monotonic_time ();
  GError *err = NULL;
  gboolean ok = FALSE;
  GPtrArray *patients = NULL;
  GThreadPool *pool = NULL;
  GAsyncQueue *done = g_async_queue_new ();
  CxrAnalysisWriter *w = NULL;
  gint64 model_id = 0, lung_model_id = 0, severity_id = 0;
  guint next = 0, in_flight = 0;
  char *artifacts = NULL, *artifacts_rel = NULL, *lung_dir = NULL;

  /* DICOM films are read with the window ingest used */
  CxrAnalyzeOptions local = *opt;
  opt = &local;
  if (!cxr_store_dicom_voi (store, &local.limits.voi, NULL, &err))
    goto out;
  if (!cxr_store_lock (store, "analyze", &err))
    goto out;
  s->run_id = cxr_store_run_begin (store, "analyze", opt->argv, &err);
  if (s->run_id < 0)
    goto out;
  if (opt->model && (model_id = classifier_row (store, opt->model, &err)) < 0)
    goto out;
  if (opt->lung_model && (lung_model_id = lung_model_row (store, opt->lung_model, &err)) < 0)
    goto out;
  if (opt->severity && opt->model
      && (!cxr_severity_model_check (opt->severity, opt->model, &err)
          || (severity_id = severity_model_row (store, opt->severity, &err)) < 0))
    goto out;
  CxrModelIds ids = { model_id, lung_model_id, severity_id };
  patients = cxr__store_patients_with_work (store, &ids, !opt->no_diff, &err);
  if (patients == NULL)
    goto out;
  for (guint i = patients->len; opt->shard.n > 0 && i-- > 0;)
    if (!cxr_shard_contains (&opt->shard, patients->pdata[i]))
      g_ptr_array_remove_index (patients, i);
  local.progression.shard = opt->shard;
  local.progression.map_region = opt->diff.region;
  s->n_patients = patients->len;
  w = cxr__analysis_writer_new (store, opt->model, &ids, !opt->no_diff, s->run_id, &err);
  if (w == NULL)
    goto out;
  if (!opt->no_diff && !artifacts_dir (store, "pairs", &artifacts, &artifacts_rel, &err))
    goto out;
  if (opt->lung_model && !artifacts_dir (store, "lungs", &lung_dir, NULL, &err))
    goto out;

  int jobs = opt->jobs > 0 ? opt->jobs : (int) g_get_num_processors ();
  pool = g_thread_pool_new (worker, done, jobs, FALSE, NULL);
  while (next < patients->len || in_flight > 0)
    {
      if (next < patients->len && in_flight < 2 * (guint) jobs)
        {
          PatientJob *j = load_job (store, patients->pdata[next++], opt, &ids, &err);
          if (j == NULL)
            goto out;
          j->artifacts = g_strdup (artifacts);
          j->lung_dir = g_strdup (lung_dir);
          j->artifacts_rel = artifacts_rel;
          in_flight++;
          g_thread_pool_push (pool, j, NULL);
          continue;
        }
      PatientJob *j = g_async_queue_pop (done);
      in_flight--;
      gboolean wrote = write_job (store, j, w, s, &err);
      job_free (j);
      if (!wrote)
        goto out;
      s->n_patients_done++;
      s->elapsed_s = (g_get_monotonic_time () - t0) / 1e6;
      if (opt->progress)
        opt->progress (s, (double) s->n_patients_done / MAX (1, s->n_patients), opt->progress_data);
    }
  /* Trends need every patient's films done: a pass over the store. */
  if (opt->model)
    {
      gint64 n_sig = cxr__store_write_pair_signals (store, model_id, s->run_id, &err);
      if (n_sig < 0)
        goto out;
      s->n_pair_signals = (guint64) n_sig;
      if (opt->limits_from && cxr__store_copy_limits (store, opt->limits_from, model_id, &err) < 0)
        goto out;
    }
  if (opt->model && !opt->no_flags)
    {
      if (!cxr_progression_calibrate (store, opt->model, opt->lung_model, opt->severity, model_id,
                                      &opt->progression, &err)
          || !cxr_progression_flag_all (store, opt->model, model_id, &opt->progression, s->run_id,
                                        &s->n_flagged, &err))
        goto out;
    }
  ok = TRUE;

out:
  if (pool)
    g_thread_pool_free (pool, FALSE, TRUE);
  PatientJob *left;
  while ((left = g_async_queue_try_pop (done)))
    job_free (left);
  g_free (artifacts);
  g_free (artifacts_rel);
  g_free (lung_dir);
  g_async_queue_unref (done);
  cxr__analysis_writer_free (w);
  if (patients)
    g_ptr_array_unref (patients);
  s->elapsed_s = (g_get_monotonic_time () - t0) / 1e6;
  if (s->run_id > 0)
    {
      CxrRunCounts c = { .n_rows = s->n_pairs, .n_ok = s->n_ok, .n_invalid = s->n_failed };
      cxr__store_run_counts (store, s->run_id, &c, NULL, NULL);
      cxr_store_run_end (store, s->run_id, ok, NULL);
    }
  if (err)
    g_propagate_error (error, err);
  return ok;
}
