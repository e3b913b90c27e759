/* SPDX-License-Identifier: MIT
 *
 * The analysis pipeline. The unit of work is one patient's series: the
 * calling thread (which owns the database connection) lists the patients
 * with pending pairs, gives each to a worker thread with everything it
 * needs (paths, and the registrations already stored), and writes each
 * patient's results in one transaction. A killed run therefore leaves
 * whole patients behind and a rerun picks up the rest; patients could as
 * well be sharded across machines by patient_id.
 *
 * Registration: every frontal film against the previous frontal film and
 * against the baseline film (fixed = the earlier film). Films are decoded
 * lazily and at most three are held per worker (baseline, previous,
 * current), whatever the length of the series.
 *
 * Inference (with a model): every frontal film without a result for that
 * model (matched by the model file's sha256) gets its embedding, one
 * probability per finding and the class activation maps, written in the
 * same per-patient transaction as the registrations.
 *
 * Difference maps: every registration that did not fail gets its maps and
 * change measures (diff.c), with the overlay PNG and the signed map under
 * DB.artifacts/pairs/ next to the database, referenced from pair_changes.
 *
 * Progression (with a model): once every patient's films are done, the
 * test-retest limits are derived if the store has none for the model, and
 * every patient's flags are recomputed (progression.c).
 *
 * Chains (transitivity): a registration is trusted as ok only if it
 * composes with its neighbours. For a new film v with previous film p:
 *  - through the previous film: with baseline b (b != p), b->v against
 *    b->p->v (the value is stored on v's baseline row);
 *  - through consecutive films: with pp the film before p (pp != b), pp->v
 *    (registered for this check only, not stored) against pp->p->v (stored
 *    on v's previous row; when pp is b this is the first chain).
 * Distances are at the centre of the first film, in px of a 1024-px film.
 * Beyond max_transitivity_px at least one of the three is wrong and none
 * can be told apart, so every ok one among them becomes low_confidence,
 * including a stored one from an earlier run (an UPDATE in the patient's
 * transaction); v's baseline row beyond 8 times the limit becomes failed.
 * So a run that adds films to a series ends with the statuses that one
 * run over the whole series gives.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "cxr/error.h"
#include "cxr/pipeline.h"

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

typedef struct {
  gint64 fixed_id, moving_id;
  char *fixed_path, *moving_path;
  gboolean cross_view;
  gboolean is_previous, is_baseline;  /* one pair may be both (visit 1) */
  double fixed_aspect, moving_aspect; /* pixel height / width in the patient */
  /* results */
  CxrRegistration reg;
  double transitivity_px;             /* baseline row's chain; NAN if not checked */
  double chain_prev_px;               /* previous row's chain; NAN if not checked */
  double norm;                        /* px of a 1024-px film per px of MOVING */
  gboolean has_skip;                  /* skip: pp->moving, for the consecutive chain */
  CxrRegistration skip;
  char *error;                        /* could not register at all */
} Pair;

/* A registration stored by an earlier run, for the chain checks. */
typedef struct {
  gint64 fixed_id, moving_id;
  char *fixed_path;
  gboolean is_previous, is_baseline;
  CxrRegistration reg;
  gboolean downgraded;                /* to ok -> low_confidence in the store */
} Stored;

/* A pair to compare: fresh from this job's registrations, or stored. */
typedef struct {
  gint64 fixed_id, moving_id;
  char *fixed_path, *moving_path;
  char *stem;                         /* artifact file name without extension */
  double spacing_mm;                  /* of FIXED, NAN unknown */
  gboolean is_previous, is_baseline;
  CxrRegistration reg;                /* stored pairs: the stored transform */
  int pair_index;                     /* fresh pairs: index into pairs, else -1 */
  CxrDiff diff;
  gboolean done;
  char *error;
} Cmp;

typedef struct {
  gint64 scan_id;
  char *path;
  CxrPrediction *pred;
  double ms;
  char *error;
} Film;

typedef struct {
  char *patient_id;
  GArray *pairs;                      /* Pair, in visit order */
  GArray *films;                      /* Film: to embed and score */
  GArray *cmps;                       /* Cmp: difference maps to make */
  char *artifacts;                    /* folder for the pair files, or NULL */
  const char *artifacts_rel;          /* the same, relative to the database's folder */
  GArray *stored;                     /* Stored: the patient's earlier registrations */
  const CxrAnalyzeOptions *opt;
} PatientJob;

static void
pair_clear (gpointer p)
{
  Pair *x = p;
  g_free (x->fixed_path);
  g_free (x->moving_path);
  g_free (x->error);
}

static void
stored_clear (gpointer p)
{
  g_free (((Stored *) p)->fixed_path);
}

static void
film_clear (gpointer p)
{
  Film *f = p;
  g_free (f->path);
  cxr_prediction_free (f->pred);
  g_free (f->error);
}

/* This job's prediction of a film, or NULL when it has none (stored
 * earlier, or the film could not be read). */
static const CxrPrediction *
film_prediction (const PatientJob *j, gint64 scan_id)
{
  for (guint k = 0; k < j->films->len; k++)
    {
      const Film *f = &g_array_index (j->films, Film, k);
      if (f->scan_id == scan_id)
        return f->pred;
    }
  return NULL;
}

static void
cmp_clear (gpointer p)
{
  Cmp *c = p;
  g_free (c->fixed_path);
  g_free (c->moving_path);
  g_free (c->stem);
  g_free (c->error);
  cxr_diff_clear (&c->diff);
}

static void
job_free (PatientJob *j)
{
  g_free (j->patient_id);
  g_array_unref (j->pairs);
  g_array_unref (j->films);
  g_array_unref (j->cmps);
  g_free (j->artifacts);
  g_array_unref (j->stored);
  g_free (j);
}

/* A tiny cache: the films a patient job needs at once (the baseline, and
 * the film, its previous one and the one before that, for the chains),
 * each with its preparation for registration, so that a film registered
 * with three others is decoded and prepared once. */
#define CACHE_SLOTS 4
typedef struct {
  gint64 id[CACHE_SLOTS];
  CxrImage *im[CACHE_SLOTS];
  CxrRegisterFilm *prep[CACHE_SLOTS]; /* made on first use */
  double aspect[CACHE_SLOTS];         /* the pixel aspect prep was made with */
  guint64 used[CACHE_SLOTS];          /* when last returned */
  guint64 clock;
} Cache;

/* The cache slot holding film @id, loaded if need be; -1 if it cannot be
 * read. */
static int
films_get (Cache *f, gint64 id, const char *path, const CxrImageLimits *lim, GError **error)
{
  for (int i = 0; i < CACHE_SLOTS; i++)
    if (f->im[i] && f->id[i] == id)
      {
        f->used[i] = ++f->clock;
        return i;
      }
  CxrImage *im = cxr_image_load (path, lim, NULL, error);
  if (im == NULL)
    return -1;
  /* Evict the least recently used, never slot 0 once it holds the
   * baseline: the two films returned last stay valid, whatever the third. */
  guint slot = 0;
  if (f->im[0] != NULL)
    {
      slot = 1;
      for (guint i = 2; i < CACHE_SLOTS; i++)
        if (f->used[i] < f->used[slot])
          slot = i;
    }
  cxr_image_free (f->im[slot]);
  g_clear_pointer (&f->prep[slot], cxr_register_film_free);
  f->im[slot] = im;
  f->id[slot] = id;
  f->used[slot] = ++f->clock;
  return (int) slot;
}

static const CxrImage *
films_image (Cache *f, gint64 id, const char *path, const CxrImageLimits *lim, GError **error)
{
  int slot = films_get (f, id, path, lim, error);
  return slot >= 0 ? f->im[slot] : NULL;
}

/* Film @id prepared for registration with pixel aspect @aspect, read and
 * prepared if need be; NULL with @error set if it cannot be. */
static const CxrRegisterFilm *
films_prepared (Cache *f, gint64 id, const char *path, double aspect, const CxrImageLimits *lim,
                const CxrRegisterOptions *ro, GError **error)
{
  int slot = films_get (f, id, path, lim, error);
  if (slot < 0)
    return NULL;
  if (!(aspect > 0))
    aspect = 1.0; /* 0 (or NULL in the store) means square */
  if (f->prep[slot] == NULL || f->aspect[slot] != aspect)
    {
      g_clear_pointer (&f->prep[slot], cxr_register_film_free);
      f->prep[slot] = cxr_register_film_new (f->im[slot], aspect, ro, error);
      f->aspect[slot] = aspect;
    }
  return f->prep[slot];
}

static void
films_clear (Cache *f)
{
  for (int i = 0; i < CACHE_SLOTS; i++)
    {
      cxr_image_free (f->im[i]);
      cxr_register_film_free (f->prep[i]);
    }
}

/* A registration in a chain: this job's (reg points into its Pair) or a
 * stored one (st set). */
typedef struct {
  CxrRegistration *reg;
  gint64 fixed_id;
  const char *fixed_path;
  Stored *st;
} Link;

/* The registration of film @moving of the given kind (previous or
 * baseline): this job's, else a stored one; reg NULL if there is none or
 * it could not be made. */
static Link
find_link (PatientJob *j, gint64 moving, gboolean baseline)
{
  Link l = { NULL, 0, NULL, NULL };
  for (guint k = 0; k < j->pairs->len; k++)
    {
      Pair *p = &g_array_index (j->pairs, Pair, k);
      if (p->moving_id == moving && (baseline ? p->is_baseline : p->is_previous) && !p->error)
        {
          l.reg = &p->reg;
          l.fixed_id = p->fixed_id;
          l.fixed_path = p->fixed_path;
          return l;
        }
    }
  for (guint k = 0; k < j->stored->len; k++)
    {
      Stored *st = &g_array_index (j->stored, Stored, k);
      if (st->moving_id == moving && (baseline ? st->is_baseline : st->is_previous))
        {
          l.reg = &st->reg;
          l.fixed_id = st->fixed_id;
          l.fixed_path = st->fixed_path;
          l.st = st;
          return l;
        }
    }
  return l;
}

static const char chain_why[] = "does not chain with the registrations of its neighbouring films";

/* a->b then b->c against a->c at a's centre, in px of a 1024-px film
 * (@norm); beyond the limit (or NAN: a link without a transform) every ok
 * registration of the three becomes low_confidence. Returns the distance. */
static double
check_chain (const Link *ab, const Link *bc, CxrRegistration *ac, double norm, double lim)
{
  double x1, y1, x2, y2;
  cxr_register_offset (ab->reg, 0, 0, &x1, &y1);
  cxr_register_offset (bc->reg, x1, y1, &x1, &y1);
  cxr_register_offset (ac, 0, 0, &x2, &y2);
  double t = hypot (x1 - x2, y1 - y2) * norm;
  if (!(t <= lim))
    {
      CxrRegistration *all[] = { ab->reg, bc->reg, ac };
      for (int k = 0; k < 3; k++)
        if (all[k]->status == CXR_REGISTER_OK)
          {
            all[k]->status = CXR_REGISTER_LOW_CONFIDENCE;
            all[k]->reason = chain_why;
          }
      if (ab->st)
        ab->st->downgraded = TRUE;
    }
  return t;
}

static void
worker (gpointer data, gpointer user_data)
{
  PatientJob *j = data;
  GAsyncQueue *done = user_data;
  Cache films = { { 0 } };
  const CxrAnalyzeOptions *opt = j->opt;
  /* In visit order, the baseline film first, so it stays in slot 0. */
  for (guint k = 0; k < j->pairs->len; k++)
    {
      Pair *p = &g_array_index (j->pairs, Pair, k);
      p->transitivity_px = p->chain_prev_px = NAN;
      g_autoptr (GError) err = NULL;
      const CxrRegisterOptions *ro = &opt->reg;
      const CxrImageLimits *lim = &opt->limits;
      /* the film returned last is never evicted, so F stays valid */
      const CxrRegisterFilm *F = films_prepared (&films, p->fixed_id, p->fixed_path,
                                                 p->fixed_aspect, lim, ro, &err);
      const CxrRegisterFilm *M = F ? films_prepared (&films, p->moving_id, p->moving_path,
                                                     p->moving_aspect, lim, ro, &err)
                                   : NULL;
      if (M == NULL || !cxr_register_films (F, M, ro, &p->reg, &err))
        {
          p->error = g_strdup (err ? err->message : "registration failed");
          memset (&p->reg, 0, sizeof p->reg);
          p->reg.status = CXR_REGISTER_FAILED;
          p->reg.reason = "film could not be read";
          continue;
        }
      const CxrImage *m = films_image (&films, p->moving_id, p->moving_path, lim, NULL);
      p->norm = 1024.0 / MAX (m->width, m->height);
      if (!p->is_previous)
        continue;
      /* The consecutive chain needs pp->v when pp, the film before the
       * previous one, is not the baseline (else v's baseline row is it):
       * made now, while pp, p and v are all in the cache. */
      Link pp = find_link (j, p->fixed_id, FALSE);
      Link bv = find_link (j, p->moving_id, TRUE);
      if (pp.reg == NULL || (bv.reg && bv.fixed_id == pp.fixed_id))
        continue;
      M = films_prepared (&films, p->moving_id, p->moving_path, p->moving_aspect, lim, ro, NULL);
      const CxrRegisterFilm *A = M ? films_prepared (&films, pp.fixed_id, pp.fixed_path,
                                                     pp.reg->fixed_aspect, lim, ro, NULL)
                                   : NULL;
      p->has_skip = A && cxr_register_films (A, M, ro, &p->skip, NULL);
    }
  /* The chains of each new film v (moving of a new previous pair p->v). */
  for (guint k = 0; k < j->pairs->len; k++)
    {
      Pair *p = &g_array_index (j->pairs, Pair, k);
      if (!p->is_previous || p->is_baseline || p->error)
        continue;
      double lim = opt->max_transitivity_px;
      Link pv = { &p->reg, p->fixed_id, p->fixed_path, NULL };
      Link bp = find_link (j, p->fixed_id, TRUE), pp = find_link (j, p->fixed_id, FALSE);
      Pair *b = NULL; /* v's baseline pair, new with it */
      for (guint q = 0; q < j->pairs->len && b == NULL; q++)
        {
          Pair *o = &g_array_index (j->pairs, Pair, q);
          if (o->is_baseline && o->moving_id == p->moving_id && !o->error)
            b = o;
        }
      if (b && bp.reg && bp.fixed_id == b->fixed_id)
        {
          b->transitivity_px = check_chain (&bp, &pv, &b->reg, p->norm, lim);
          if (!(b->transitivity_px <= 8 * lim))
            {
              b->reg.status = CXR_REGISTER_FAILED;
              b->reg.reason = chain_why;
            }
          if (pp.reg && pp.fixed_id == b->fixed_id)
            p->chain_prev_px = b->transitivity_px;
        }
      if (p->has_skip) /* pp found as when the skip was made */
        p->chain_prev_px = check_chain (&pp, &pv, &p->skip, p->norm, lim);
    }
  /* Films first: the difference maps reuse their predictions. */
  for (guint k = 0; k < j->films->len; k++)
    {
      Film *f = &g_array_index (j->films, Film, k);
      g_autoptr (GError) err = NULL;
      const CxrImage *im = films_image (&films, f->scan_id, f->path, &j->opt->limits, &err);
      if (im == NULL)
        {
          f->error = g_strdup (err->message);
          continue;
        }
      gint64 t0 = g_get_monotonic_time ();
      f->pred = cxr_model_predict (j->opt->model, im);
      f->ms = (g_get_monotonic_time () - t0) / 1000.0;
    }
  for (guint k = 0; k < j->cmps->len; k++)
    {
      Cmp *c = &g_array_index (j->cmps, Cmp, k);
      const CxrRegistration *r = &c->reg;
      if (c->pair_index >= 0)
        r = &g_array_index (j->pairs, Pair, c->pair_index).reg;
      if (r->status == CXR_REGISTER_FAILED)
        continue;
      g_autoptr (GError) err = NULL;
      const CxrImage *f = films_image (&films, c->fixed_id, c->fixed_path, &j->opt->limits, &err);
      const CxrImage *m
          = f ? films_image (&films, c->moving_id, c->moving_path, &j->opt->limits, &err) : NULL;
      CxrDiffOptions dopt = j->opt->diff;
      dopt.model = j->opt->model;
      dopt.fixed_prediction = film_prediction (j, c->fixed_id);
      dopt.moving_prediction = film_prediction (j, c->moving_id);
      g_autofree char *png = j->artifacts ? g_strdup_printf ("%s/%s.png", j->artifacts, c->stem) : NULL;
      g_autofree char *npy = j->artifacts ? g_strdup_printf ("%s/%s.npy", j->artifacts, c->stem) : NULL;
      dopt.overlay_png = png;
      dopt.map_npy = npy;
      if (m && cxr_diff_pair (f, m, r, c->spacing_mm, &dopt, &c->diff, &err))
        c->done = TRUE;
      else
        c->error = g_strdup (err ? err->message : "difference map failed");
    }
  films_clear (&films);
  g_async_queue_push (done, j);
}

static void G_GNUC_PRINTF (2, 3)
note (CxrAnalyzeSummary *s, const char *fmt, ...)
{
  s->n_messages++;
  if (s->messages->len >= 50)
    return;
  va_list ap;
  va_start (ap, fmt);
  g_ptr_array_add (s->messages, g_strdup_vprintf (fmt, ap));
  va_end (ap);
}

typedef struct {
  sqlite3_stmt *reg, *down, *emb, *pred, *heat, *chg, *fchg;
  gint64 model_id;
} Writers;

static gboolean
write_cmps (CxrStore *store, PatientJob *j, Writers *w, gint64 run_id, CxrAnalyzeSummary *s,
            GError **error)
{
  for (guint k = 0; k < j->cmps->len; k++)
    {
      Cmp *c = &g_array_index (j->cmps, Cmp, k);
      if (c->error)
        note (s, "patient %s: difference map %s: %s", j->patient_id, c->stem, c->error);
      if (!c->done)
        continue;
      const CxrDiff *d = &c->diff;
      for (int kind = 0; kind < 2; kind++)
        {
          if (!(kind == 0 ? c->is_previous : c->is_baseline))
            continue;
          sqlite3_stmt *st = w->chg;
          int i = 1;
          sqlite3_bind_int64 (st, i++, c->fixed_id);
          sqlite3_bind_int64 (st, i++, c->moving_id);
          sqlite3_bind_text (st, i++, kind == 0 ? "previous" : "baseline", -1, SQLITE_STATIC);
          double v[] = { d->change_score, d->change_energy, d->changed_area_px, d->changed_area_mm2,
                         d->peak_x_px, d->peak_y_px, d->peak_value, d->threshold, d->noise_sigma,
                         d->mask_area_px, d->embedding_distance, d->feature_change,
                         d->trend_score, d->trend_threshold };
          for (guint q = 0; q < G_N_ELEMENTS (v); q++, i++)
            if (!isnan (v[q]))
              sqlite3_bind_double (st, i, v[q]);
          if (j->opt->model)
            sqlite3_bind_int64 (st, i, w->model_id);
          i++;
          g_autofree char *png = j->artifacts ? g_strdup_printf ("%s/%s.png", j->artifacts_rel, c->stem) : NULL;
          g_autofree char *npy = j->artifacts ? g_strdup_printf ("%s/%s.npy", j->artifacts_rel, c->stem) : NULL;
          if (png)
            sqlite3_bind_text (st, i, png, -1, SQLITE_TRANSIENT);
          i++;
          if (npy)
            sqlite3_bind_text (st, i, npy, -1, SQLITE_TRANSIENT);
          i++;
          sqlite3_bind_double (st, i++, d->elapsed_ms);
          sqlite3_bind_text (st, i++, CXR_DIFF_METHOD, -1, SQLITE_STATIC);
          sqlite3_bind_int64 (st, i++, run_id);
          int rc = sqlite3_step (st);
          sqlite3_reset (st);
          sqlite3_clear_bindings (st);
          for (int f = 0; rc == SQLITE_DONE && f < d->n_classes; f++)
            {
              sqlite3_bind_int64 (w->fchg, 1, c->fixed_id);
              sqlite3_bind_int64 (w->fchg, 2, c->moving_id);
              sqlite3_bind_text (w->fchg, 3, kind == 0 ? "previous" : "baseline", -1, SQLITE_STATIC);
              sqlite3_bind_int64 (w->fchg, 4, w->model_id);
              sqlite3_bind_text (w->fchg, 5, cxr_model_class_name (j->opt->model, f), -1, SQLITE_STATIC);
              sqlite3_bind_double (w->fchg, 6, d->probability_delta[f]);
              sqlite3_bind_double (w->fchg, 7, d->heatmap_delta_max[f]);
              rc = sqlite3_step (w->fchg);
              sqlite3_reset (w->fchg);
            }
          if (rc != SQLITE_DONE)
            return cxr_store_set_error (store, error, "storing a difference map");
        }
      s->n_diffs++;
      s->diff_ms += d->elapsed_ms;
    }
  return TRUE;
}

static gboolean
write_films (CxrStore *store, PatientJob *j, Writers *w, gint64 run_id, CxrAnalyzeSummary *s,
             GError **error)
{
  const CxrModel *m = j->opt->model;
  for (guint k = 0; k < j->films->len; k++)
    {
      Film *f = &g_array_index (j->films, Film, k);
      if (f->error)
        {
          note (s, "patient %s: %s", j->patient_id, f->error);
          continue;
        }
      CxrPrediction *p = f->pred;
      sqlite3_bind_int64 (w->emb, 1, f->scan_id);
      sqlite3_bind_int64 (w->emb, 2, w->model_id);
      sqlite3_bind_int (w->emb, 3, p->dim);
      /* float32 in host order: little-endian on every platform we build for */
      G_STATIC_ASSERT (G_BYTE_ORDER == G_LITTLE_ENDIAN);
      sqlite3_bind_blob (w->emb, 4, p->embedding, p->dim * 4, SQLITE_STATIC);
      sqlite3_bind_int64 (w->emb, 5, run_id);
      int rc = sqlite3_step (w->emb);
      sqlite3_reset (w->emb);
      gsize hw = (gsize) p->map_w * p->map_h;
      for (int c = 0; rc == SQLITE_DONE && c < p->n_classes; c++)
        {
          const char *finding = cxr_model_class_name (m, c);
          sqlite3_bind_int64 (w->pred, 1, f->scan_id);
          sqlite3_bind_int64 (w->pred, 2, w->model_id);
          sqlite3_bind_text (w->pred, 3, finding, -1, SQLITE_STATIC);
          sqlite3_bind_double (w->pred, 4, p->probability[c]);
          rc = sqlite3_step (w->pred);
          sqlite3_reset (w->pred);
          if (rc != SQLITE_DONE)
            break;
          sqlite3_bind_int64 (w->heat, 1, f->scan_id);
          sqlite3_bind_int64 (w->heat, 2, w->model_id);
          sqlite3_bind_text (w->heat, 3, finding, -1, SQLITE_STATIC);
          sqlite3_bind_int (w->heat, 4, p->map_w);
          sqlite3_bind_int (w->heat, 5, p->map_h);
          sqlite3_bind_blob (w->heat, 6, p->cam + c * hw, (int) (hw * 4), SQLITE_STATIC);
          rc = sqlite3_step (w->heat);
          sqlite3_reset (w->heat);
        }
      if (rc != SQLITE_DONE)
        return cxr_store_set_error (store, error, "storing a prediction");
      s->n_inferred++;
      s->infer_ms += f->ms;
    }
  return TRUE;
}

static gboolean
write_job (CxrStore *store, PatientJob *j, Writers *w, gint64 run_id, CxrAnalyzeSummary *s,
           GError **error)
{
  sqlite3_stmt *ins = w->reg;
  if (!cxr_store_begin (store, error))
    return FALSE;
  if (!write_films (store, j, w, run_id, s, error))
    {
      cxr_store_rollback (store);
      return FALSE;
    }
  for (guint k = 0; k < j->pairs->len; k++)
    {
      Pair *p = &g_array_index (j->pairs, Pair, k);
      const CxrRegistration *r = &p->reg;
      if (p->error)
        note (s, "patient %s: %s", j->patient_id, p->error);
      for (int kind = 0; kind < 2; kind++)
        {
          if (!(kind == 0 ? p->is_previous : p->is_baseline))
            continue;
          int i = 1;
          sqlite3_bind_int64 (ins, i++, p->fixed_id);
          sqlite3_bind_int64 (ins, i++, p->moving_id);
          sqlite3_bind_text (ins, i++, kind == 0 ? "previous" : "baseline", -1, SQLITE_STATIC);
          gboolean have = p->error == NULL;
          double v[] = { r->dx_px, r->dy_px, r->angle_deg, r->scale, r->confidence };
          for (guint q = 0; q < G_N_ELEMENTS (v); q++, i++)
            if (have)
              sqlite3_bind_double (ins, i, v[q]);
          sqlite3_bind_text (ins, i++, cxr_register_status_name (r->status), -1, SQLITE_STATIC);
          sqlite3_bind_int (ins, i++, p->cross_view);
          sqlite3_bind_double (ins, i++, r->elapsed_ms);
          sqlite3_bind_text (ins, i++, CXR_REGISTER_METHOD, -1, SQLITE_STATIC);
          double ev[] = { r->ncc_before, r->ncc_after, r->psr, r->asymmetry_px, r->fixed_aspect,
                          r->moving_aspect };
          for (guint q = 0; q < G_N_ELEMENTS (ev); q++, i++)
            if (have)
              sqlite3_bind_double (ins, i, ev[q]);
          double chain = kind == 1 ? p->transitivity_px : p->chain_prev_px;
          if (!isnan (chain))
            sqlite3_bind_double (ins, i, chain);
          i++;
          if (p->error)
            sqlite3_bind_text (ins, i++, p->error, -1, SQLITE_TRANSIENT);
          else if (r->reason)
            sqlite3_bind_text (ins, i++, r->reason, -1, SQLITE_STATIC);
          else
            i++;
          sqlite3_bind_int64 (ins, i++, run_id);
          int rc = sqlite3_step (ins);
          sqlite3_reset (ins);
          sqlite3_clear_bindings (ins);
          if (rc != SQLITE_DONE)
            {
              cxr_store_rollback (store);
              return cxr_store_set_error (store, error, "storing a registration");
            }
          s->n_pairs++;
          s->n_ok += r->status == CXR_REGISTER_OK;
          s->n_low += r->status == CXR_REGISTER_LOW_CONFIDENCE;
          s->n_failed += r->status == CXR_REGISTER_FAILED;
          s->n_cross_view += p->cross_view;
          s->n_intransitive += chain > j->opt->max_transitivity_px;
        }
      s->register_ms += r->elapsed_ms + (p->has_skip ? p->skip.elapsed_ms : 0);
    }
  for (guint k = 0; k < j->stored->len; k++)
    {
      const Stored *st = &g_array_index (j->stored, Stored, k);
      if (!st->downgraded)
        continue;
      sqlite3_bind_text (w->down, 1, chain_why, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (w->down, 2, st->fixed_id);
      sqlite3_bind_int64 (w->down, 3, st->moving_id);
      int rc = sqlite3_step (w->down);
      sqlite3_reset (w->down);
      if (rc != SQLITE_DONE)
        {
          cxr_store_rollback (store);
          return cxr_store_set_error (store, error, "downgrading a stored registration");
        }
      s->n_downgraded += sqlite3_changes (cxr_store_db (store));
    }
  if (!write_cmps (store, j, w, run_id, s, error))
    {
      cxr_store_rollback (store);
      return FALSE;
    }
  return cxr_store_commit (store, error);
}

static CxrRegisterStatus
status_of (const char *s)
{
  return g_str_equal (s, "ok") ? CXR_REGISTER_OK
         : g_str_equal (s, "failed") ? CXR_REGISTER_FAILED : CXR_REGISTER_LOW_CONFIDENCE;
}

/* A stored registration read from the columns dx_px, dy_px, angle_deg,
 * scale, status, fixed_aspect, moving_aspect (the aspects coalesced to 1),
 * in that order from @col. */
#define STORED_TRANSFORM_COLUMNS                                                                  \
  "r.dx_px, r.dy_px, r.angle_deg, r.scale, min(r.status),"                                        \
  " coalesce(r.fixed_aspect, 1), coalesce(r.moving_aspect, 1)"

static void
stored_transform (sqlite3_stmt *st, int col, CxrRegistration *r)
{
  r->dx_px = sqlite3_column_double (st, col);
  r->dy_px = sqlite3_column_double (st, col + 1);
  r->angle_deg = sqlite3_column_double (st, col + 2);
  r->scale = sqlite3_column_double (st, col + 3);
  r->status = status_of ((const char *) sqlite3_column_text (st, col + 4));
  r->fixed_aspect = sqlite3_column_double (st, col + 5);
  r->moving_aspect = sqlite3_column_double (st, col + 6);
}

/* SQL condition on a registration r: its difference map is still to make,
 * because it has none yet or one made before the trend score existed
 * (schema 0006), which is made again. Used to find the patients with work
 * and, per patient, the stored pairs to compare. */
#define MAP_PENDING                                                                               \
  "r.status <> 'failed' AND NOT EXISTS (SELECT 1 FROM pair_changes c"                             \
  " WHERE c.fixed_scan_id = r.fixed_scan_id AND c.moving_scan_id = r.moving_scan_id"              \
  " AND c.kind = r.kind AND c.trend_score IS NOT NULL)"

/* The comparisons of one patient: this job's new pairs, and stored pairs
 * whose map is still to make (MAP_PENDING). */
static gboolean
load_cmps (CxrStore *store, PatientJob *j, GError **error)
{
  g_autoptr (GHashTable) stem = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  g_autoptr (GHashTable) spacing = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  sqlite3_stmt *st = cxr_store_prepare (store,
      "SELECT scan_id, image_index, pixel_spacing_mm FROM scans WHERE patient_id = ?", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, j->patient_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      gpointer id = GINT_TO_POINTER (sqlite3_column_int64 (st, 0));
      char *name = g_strdup ((const char *) sqlite3_column_text (st, 1));
      char *dot = strrchr (name, '.');
      if (dot)
        *dot = '\0';
      g_strdelimit (name, "/\\ ", '_');
      g_hash_table_insert (stem, id, name);
      double sp = sqlite3_column_type (st, 2) == SQLITE_NULL ? NAN : sqlite3_column_double (st, 2);
      g_hash_table_insert (spacing, id, g_memdup2 (&sp, sizeof sp));
    }
  sqlite3_finalize (st);
#define STEM(f, m) g_strdup_printf ("%s__%s", (char *) g_hash_table_lookup (stem, GINT_TO_POINTER (f)), \
                                    (char *) g_hash_table_lookup (stem, GINT_TO_POINTER (m)))
#define SPACING(f) (*(double *) g_hash_table_lookup (spacing, GINT_TO_POINTER (f)))
  for (guint k = 0; k < j->pairs->len; k++)
    {
      const Pair *p = &g_array_index (j->pairs, Pair, k);
      Cmp c = { p->fixed_id, p->moving_id, g_strdup (p->fixed_path), g_strdup (p->moving_path),
                STEM (p->fixed_id, p->moving_id), SPACING (p->fixed_id), p->is_previous,
                p->is_baseline };
      c.pair_index = (int) k;
      g_array_append_val (j->cmps, c);
    }
  st = cxr_store_prepare (store,
      "SELECT r.fixed_scan_id, r.moving_scan_id, group_concat(r.kind), f.path, m.path, "
      STORED_TRANSFORM_COLUMNS
      "  FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id"
      "  JOIN scans m ON m.scan_id = r.moving_scan_id"
      " WHERE m.patient_id = ? AND " MAP_PENDING
      " GROUP BY 1, 2", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, j->patient_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      gint64 f = sqlite3_column_int64 (st, 0), m = sqlite3_column_int64 (st, 1);
      const char *kinds = (const char *) sqlite3_column_text (st, 2);
      Cmp c = { f, m, g_strdup ((const char *) sqlite3_column_text (st, 3)),
                g_strdup ((const char *) sqlite3_column_text (st, 4)), STEM (f, m), SPACING (f),
                strstr (kinds, "previous") != NULL, strstr (kinds, "baseline") != NULL };
      c.pair_index = -1;
      stored_transform (st, 5, &c.reg);
      g_array_append_val (j->cmps, c);
    }
#undef STEM
#undef SPACING
  sqlite3_finalize (st);
  return TRUE;
}

/* Everything a worker needs for one patient, read on the calling thread. */
static PatientJob *
load_job (CxrStore *store, const char *patient_id, const CxrAnalyzeOptions *opt, gint64 model_id,
          GError **error)
{
  PatientJob *j = g_new0 (PatientJob, 1);
  j->patient_id = g_strdup (patient_id);
  j->opt = opt;
  j->pairs = g_array_new (FALSE, TRUE, sizeof (Pair));
  g_array_set_clear_func (j->pairs, pair_clear);
  j->films = g_array_new (FALSE, TRUE, sizeof (Film));
  g_array_set_clear_func (j->films, film_clear);
  j->cmps = g_array_new (FALSE, TRUE, sizeof (Cmp));
  g_array_set_clear_func (j->cmps, cmp_clear);
  if (opt->model)
    {
      sqlite3_stmt *fs = cxr_store_prepare (store,
          "SELECT scan_id, path FROM frontal_scans f WHERE patient_id = ?1 AND NOT EXISTS"
          " (SELECT 1 FROM embeddings e WHERE e.scan_id = f.scan_id AND e.model_id = ?2)"
          " ORDER BY visit", error);
      if (fs == NULL)
        {
          job_free (j);
          return NULL;
        }
      sqlite3_bind_text (fs, 1, patient_id, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (fs, 2, model_id);
      while (sqlite3_step (fs) == SQLITE_ROW)
        {
          Film f = { sqlite3_column_int64 (fs, 0), g_strdup ((const char *) sqlite3_column_text (fs, 1)) };
          g_array_append_val (j->films, f);
        }
      sqlite3_finalize (fs);
    }
  j->stored = g_array_new (FALSE, TRUE, sizeof (Stored));
  g_array_set_clear_func (j->stored, stored_clear);
  sqlite3_stmt *st = cxr_store_prepare (store,
      "SELECT pr.fixed_scan_id, pr.moving_scan_id, group_concat(pr.kind), f.path, m.path,"
      "       f.view_kind <> m.view_kind, fa.pixel_aspect, ma.pixel_aspect"
      "  FROM pending_registrations pr JOIN scans f ON f.scan_id = pr.fixed_scan_id"
      "  JOIN scans m ON m.scan_id = pr.moving_scan_id"
      "  JOIN scan_pixel_aspect fa ON fa.scan_id = f.scan_id"
      "  JOIN scan_pixel_aspect ma ON ma.scan_id = m.scan_id"
      " WHERE pr.patient_id = ? GROUP BY 1, 2 ORDER BY pr.visit, f.visit DESC", error);
  if (st == NULL)
    {
      job_free (j);
      return NULL;
    }
  sqlite3_bind_text (st, 1, patient_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      Pair p = { 0 };
      p.fixed_id = sqlite3_column_int64 (st, 0);
      p.moving_id = sqlite3_column_int64 (st, 1);
      const char *kinds = (const char *) sqlite3_column_text (st, 2);
      p.is_previous = strstr (kinds, "previous") != NULL;
      p.is_baseline = strstr (kinds, "baseline") != NULL;
      p.fixed_path = g_strdup ((const char *) sqlite3_column_text (st, 3));
      p.moving_path = g_strdup ((const char *) sqlite3_column_text (st, 4));
      p.cross_view = sqlite3_column_int (st, 5);
      p.fixed_aspect = sqlite3_column_double (st, 6);
      p.moving_aspect = sqlite3_column_double (st, 7);
      g_array_append_val (j->pairs, p);
    }
  sqlite3_finalize (st);
  /* Stored registrations, for the chain checks of new films. */
  st = cxr_store_prepare (store,
      "SELECT r.fixed_scan_id, r.moving_scan_id, group_concat(r.kind), f.path, "
      STORED_TRANSFORM_COLUMNS
      "  FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id"
      "  JOIN scans m ON m.scan_id = r.moving_scan_id"
      " WHERE m.patient_id = ? AND r.dx_px IS NOT NULL GROUP BY 1, 2", error);
  if (st == NULL)
    {
      job_free (j);
      return NULL;
    }
  sqlite3_bind_text (st, 1, patient_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      const char *kinds = (const char *) sqlite3_column_text (st, 2);
      Stored r = { sqlite3_column_int64 (st, 0), sqlite3_column_int64 (st, 1),
                   g_strdup ((const char *) sqlite3_column_text (st, 3)),
                   strstr (kinds, "previous") != NULL, strstr (kinds, "baseline") != NULL };
      stored_transform (st, 4, &r.reg);
      g_array_append_val (j->stored, r);
    }
  sqlite3_finalize (st);
  if (!opt->no_diff && !load_cmps (store, j, error))
    {
      job_free (j);
      return NULL;
    }
  return j;
}

/* The model's row, added the first time a file with its sha256 is used. */
static gint64
model_row (CxrStore *store, const CxrModel *m, GError **error)
{
  sqlite3_stmt *st = cxr_store_prepare (store,
      "INSERT INTO models (name, architecture, sha256, classes, metadata, input_size, embedding_dim)"
      " VALUES (?,?,?,?,?,?,?) ON CONFLICT (sha256) DO NOTHING", error);
  if (st == NULL)
    return -1;
  GString *cls = g_string_new (NULL);
  for (int c = 0; c < cxr_model_n_classes (m); c++)
    g_string_append_printf (cls, "%s%s", c ? "|" : "", cxr_model_class_name (m, c));
  g_autofree char *meta = cxr_model_metadata_json (m);
  sqlite3_bind_text (st, 1, cxr_model_name (m), -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, cxr_model_architecture (m), -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, cxr_model_sha256 (m), -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 4, cls->str, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text (st, 5, meta, -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 6, cxr_model_input_size (m));
  sqlite3_bind_int (st, 7, cxr_model_embedding_dim (m));
  int rc = sqlite3_step (st);
  sqlite3_finalize (st);
  g_string_free (cls, TRUE);
  if (rc != SQLITE_DONE)
    {
      cxr_store_set_error (store, error, "adding the model");
      return -1;
    }
  st = cxr_store_prepare (store, "SELECT model_id FROM models WHERE sha256 = ?", error);
  if (st == NULL)
    return -1;
  sqlite3_bind_text (st, 1, cxr_model_sha256 (m), -1, SQLITE_STATIC);
  gint64 id = sqlite3_step (st) == SQLITE_ROW ? sqlite3_column_int64 (st, 0) : -1;
  sqlite3_finalize (st);
  return id;
}

/**
 * cxr_pipeline_analyze:
 * Registers every pending pair of frontal films, patient by patient.
 * Problems with single films are counted and noted in @summary; only
 * database errors return %FALSE.
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
  GPtrArray *patients = g_ptr_array_new_with_free_func (g_free);
  GThreadPool *pool = NULL;
  GAsyncQueue *done = g_async_queue_new ();
  Writers w = { 0 };
  guint next = 0, in_flight = 0;
  char *artifacts = NULL, *artifacts_rel = NULL;

  s->run_id = cxr_store_run_begin (store, "analyze", opt->argv, &err);
  if (s->run_id < 0)
    goto out;
  if (opt->model && (w.model_id = model_row (store, opt->model, &err)) < 0)
    goto out;
  sqlite3_stmt *st = cxr_store_prepare (store,
      "SELECT patient_id FROM pending_registrations UNION"
      " SELECT patient_id FROM frontal_scans f WHERE ?1 AND NOT EXISTS"
      "  (SELECT 1 FROM embeddings e WHERE e.scan_id = f.scan_id AND e.model_id = ?2) UNION"
      " SELECT m.patient_id FROM registrations r JOIN scans m ON m.scan_id = r.moving_scan_id"
      "  WHERE ?3 AND " MAP_PENDING
      " ORDER BY 1", &err);
  if (st == NULL)
    goto out;
  sqlite3_bind_int (st, 1, opt->model != NULL);
  sqlite3_bind_int64 (st, 2, w.model_id);
  sqlite3_bind_int (st, 3, !opt->no_diff);
  while (sqlite3_step (st) == SQLITE_ROW)
    g_ptr_array_add (patients, g_strdup ((const char *) sqlite3_column_text (st, 0)));
  sqlite3_finalize (st);
  s->n_patients = patients->len;

  w.reg = cxr_store_prepare (store,
      "INSERT OR REPLACE INTO registrations (fixed_scan_id, moving_scan_id, kind, dx_px, dy_px,"
      " angle_deg, scale, confidence, status, cross_view, elapsed_ms, method, ncc_before,"
      " ncc_after, psr, asymmetry_px, fixed_aspect, moving_aspect, transitivity_px, reason, run_id)"
      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &err);
  w.down = w.reg ? cxr_store_prepare (store,
      "UPDATE registrations SET status = 'low_confidence', reason = ?"
      " WHERE fixed_scan_id = ? AND moving_scan_id = ? AND status = 'ok'", &err) : NULL;
  if (w.down == NULL)
    goto out;
  if (opt->model)
    {
      w.emb = cxr_store_prepare (store, "INSERT OR REPLACE INTO embeddings"
                                 " (scan_id, model_id, dim, vector, run_id) VALUES (?,?,?,?,?)", &err);
      w.pred = w.emb ? cxr_store_prepare (store, "INSERT OR REPLACE INTO predictions"
                                          " (scan_id, model_id, finding, probability)"
                                          " VALUES (?,?,?,?)", &err) : NULL;
      w.heat = w.pred ? cxr_store_prepare (store, "INSERT OR REPLACE INTO heatmaps"
                                           " (scan_id, model_id, finding, width, height, data)"
                                           " VALUES (?,?,?,?,?,?)", &err) : NULL;
      if (w.heat == NULL)
        goto out;
    }
  if (!opt->no_diff)
    {
      w.chg = cxr_store_prepare (store,
          "INSERT OR REPLACE INTO pair_changes (fixed_scan_id, moving_scan_id, kind, change_score,"
          " change_energy, changed_area_px, changed_area_mm2, peak_x_px, peak_y_px, peak_value,"
          " threshold, noise_sigma, mask_area_px, embedding_distance, feature_change,"
          " trend_score, trend_threshold, model_id, overlay_path, map_path, elapsed_ms, method, run_id)"
          " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &err);
      w.fchg = w.chg ? cxr_store_prepare (store,
          "INSERT OR REPLACE INTO pair_finding_changes (fixed_scan_id, moving_scan_id, kind,"
          " model_id, finding, probability_delta, heatmap_delta_max) VALUES (?,?,?,?,?,?,?)", &err)
                     : NULL;
      if (w.fchg == NULL)
        goto out;
      g_autofree char *base = g_path_get_basename (cxr_store_path (store));
      g_autofree char *dir = g_path_get_dirname (cxr_store_path (store));
      artifacts_rel = g_strdup_printf ("%s.artifacts/pairs", base);
      artifacts = g_build_filename (dir, artifacts_rel, NULL);
      if (g_mkdir_with_parents (artifacts, 0755) != 0)
        {
          g_set_error (&err, CXR_ERROR, CXR_ERROR_IO, "%s: cannot create: %s", artifacts,
                       g_strerror (errno));
          goto out;
        }
    }

  int jobs = opt->jobs > 0 ? opt->jobs : (int) g_get_num_processors ();
  pool = g_thread_pool_new (worker, done, jobs, FALSE, NULL);
  while (next < patients->len || in_flight > 0)
    {
      if (next < patients->len && in_flight < 2 * (guint) jobs)
        {
          PatientJob *j = load_job (store, patients->pdata[next++], opt, w.model_id, &err);
          if (j == NULL)
            goto out;
          j->artifacts = g_strdup (artifacts);
          j->artifacts_rel = artifacts_rel;
          in_flight++;
          g_thread_pool_push (pool, j, NULL);
          continue;
        }
      PatientJob *j = g_async_queue_pop (done);
      in_flight--;
      gboolean wrote = write_job (store, j, &w, s->run_id, s, &err);
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
      if (!cxr_progression_calibrate (store, opt->model, w.model_id, &opt->progression, &err)
          || !cxr_progression_flag_all (store, opt->model, w.model_id, &opt->progression, s->run_id,
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
  g_async_queue_unref (done);
  sqlite3_finalize (w.reg);
  sqlite3_finalize (w.down);
  sqlite3_finalize (w.emb);
  sqlite3_finalize (w.pred);
  sqlite3_finalize (w.heat);
  sqlite3_finalize (w.chg);
  sqlite3_finalize (w.fchg);
  g_ptr_array_unref (patients);
  s->elapsed_s = (g_get_monotonic_time () - t0) / 1e6;
  if (s->run_id > 0)
    {
      sqlite3_stmt *u = cxr_store_prepare (store,
          "UPDATE runs SET n_rows = ?, n_ok = ?, n_invalid = ? WHERE run_id = ?", NULL);
      if (u)
        {
          sqlite3_bind_int64 (u, 1, (gint64) s->n_pairs);
          sqlite3_bind_int64 (u, 2, (gint64) s->n_ok);
          sqlite3_bind_int64 (u, 3, (gint64) s->n_failed);
          sqlite3_bind_int64 (u, 4, s->run_id);
          sqlite3_step (u);
          sqlite3_finalize (u);
        }
      cxr_store_run_end (store, s->run_id, ok, NULL);
    }
  if (err)
    g_propagate_error (error, err);
  return ok;
}
