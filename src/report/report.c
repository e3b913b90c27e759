/* SPDX-License-Identifier: MIT
 *
 * Change reports: one page per patient (self-contained HTML, or the same
 * content as JSON) and a cohort index. A patient's report is loaded from
 * the store once into a CxrReportData and handed to one of two renderers
 * (report-html.c, report-json.c); this file loads, names and writes.
 */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "cxr/error.h"
#include "cxr/report.h"
#include "report-private.h"
#include "util-private.h"

static void
trend_free (gpointer p)
{
  CxrReportTrend *tr = p;
  cxr_signal_free (tr->signal);
  g_free (tr->title);
  g_free (tr->y);
  g_free (tr);
}

void
cxr__report_data_free (CxrReportData *d)
{
  if (d == NULL)
    return;
  g_free (d->patient_id);
  g_free (d->patient.sex);
  if (d->films)
    g_array_unref (d->films);
  g_free (d->model_name);
  g_free (d->model_sha256);
  g_free (d->store_path);
  g_free (d->artifacts_dir);
  if (d->flags)
    g_array_unref (d->flags);
  if (d->trend_sets)
    g_ptr_array_unref (d->trend_sets);
  if (d->pairs)
    g_array_unref (d->pairs);
  if (d->pair_films)
    g_ptr_array_unref (d->pair_films);
  if (d->events)
    g_array_unref (d->events);
  g_free (d);
}

static void
event_clear (gpointer p)
{
  CxrReportEvent *e = p;
  g_ptr_array_unref (e->flags);
}

/* The film of @visit, or NULL. */
const CxrReportFilm *
cxr__report_film_at (const CxrReportData *d, int visit)
{
  for (guint i = 0; i < d->films->len; i++)
    if (g_array_index (d->films, CxrReportFilm, i).visit == visit)
      return &g_array_index (d->films, CxrReportFilm, i);
  return NULL;
}

/**
 * cxr__report_when:
 * When @visit was, as a reader wants it: its study date, else its day
 * from the first film, else the visit number.
 *
 * Returns: (transfer full): the text.
 */
char *
cxr__report_when (const CxrReportData *d, int visit)
{
  const CxrReportFilm *f = cxr__report_film_at (d, visit);
  const CxrReportFilm *first = d->films->len ? &g_array_index (d->films, CxrReportFilm, 0) : NULL;
  if (f && f->study_date && *f->study_date)
    return g_strndup (f->study_date, 10);
  if (f && first && !isnan (f->day) && !isnan (first->day))
    return g_strdup_printf ("day %.0f", f->day - first->day);
  return g_strdup_printf ("visit %d", visit);
}

/**
 * cxr__report_signal_label:
 * A signal as a reader names it: "Edema probability", "Brixia zone D (left
 * upper zone)", "left lung's area", ...
 *
 * Returns: (transfer full): the label.
 */
char *
cxr__report_signal_label (const char *s)
{
  const char *finding;
  const CxrSignalClass *k = cxr__signal_class_of_name (s, &finding);
  return k ? k->label (finding, FALSE) : g_strdup (s);
}

/* A signal whose rise is a worsening (a finding, a zone, a lung's area
 * lost), not only a distance from the first film. */
static gboolean
directional (const char *signal)
{
  const char *finding;
  const CxrSignalClass *k = cxr__signal_class_of_name (signal, &finding);
  return k && k->directional;
}

/* directional signals first: what worsened, then what moved */
static int
flag_cmp (gconstpointer a, gconstpointer b)
{
  const CxrFlagRow *x = *(const CxrFlagRow *const *) a, *y = *(const CxrFlagRow *const *) b;
  return directional (y->signal) - directional (x->signal);
}

static int
event_rank (const CxrReportEvent *e)
{
  return g_str_equal (e->direction, "worse") ? 0 : g_str_equal (e->direction, "changed") ? 1 : 2;
}

static int
event_cmp (gconstpointer a, gconstpointer b)
{
  const CxrReportEvent *x = a, *y = b;
  int r = event_rank (x) - event_rank (y);
  return r ? r : (x->to_visit > y->to_visit) - (x->to_visit < y->to_visit);
}

/* The patient's flags as events (CxrReportEvent) and the verdict: flags
 * of one view and kind that rest on the same visits (a step's two films,
 * or a trend's first film beyond the limit and its last film) are one
 * event. */
static void
load_events (CxrReportData *d)
{
  d->events = g_array_new (FALSE, TRUE, sizeof (CxrReportEvent));
  g_array_set_clear_func (d->events, event_clear);
  for (guint k = 0; k < d->flags->len; k++)
    {
      const CxrFlagRow *f = &g_array_index (d->flags, CxrFlagRow, k);
      gboolean step = f->step_from_visit >= 0;
      int from = step ? f->step_from_visit : f->event_visit >= 0 ? f->event_visit : f->first_visit;
      int to = step ? f->step_to_visit : f->last_visit;
      CxrReportEvent *e = NULL;
      for (guint i = 0; i < d->events->len && e == NULL; i++)
        {
          CxrReportEvent *x = &g_array_index (d->events, CxrReportEvent, i);
          if (x->kind == f->kind && g_str_equal (x->view, f->view_kind) && x->from_visit == from
              && x->to_visit == to)
            e = x;
        }
      if (e == NULL)
        {
          CxrReportEvent n = { f->kind, f->view_kind, "changed", from, to, g_ptr_array_new () };
          g_array_append_val (d->events, n);
          e = &g_array_index (d->events, CxrReportEvent, d->events->len - 1);
        }
      g_ptr_array_add (e->flags, (gpointer) f);
      if (f->kind == CXR_TREND_IMPROVING)
        e->direction = "better";
      else if (directional (f->signal))
        e->direction = "worse";
    }
  for (guint i = 0; i < d->events->len; i++)
    g_ptr_array_sort (g_array_index (d->events, CxrReportEvent, i).flags, flag_cmp);
  g_array_sort (d->events, event_cmp);
  gboolean worse = FALSE, better = FALSE, changed = FALSE;
  for (guint i = 0; i < d->events->len; i++)
    {
      const char *dir = g_array_index (d->events, CxrReportEvent, i).direction;
      worse = worse || g_str_equal (dir, "worse");
      better = better || g_str_equal (dir, "better");
      changed = changed || g_str_equal (dir, "changed");
    }
  /* a direction-less change beside a worsening is part of it; beside an
   * improvement, or alone, it leaves the direction open */
  d->verdict = d->trend_sets->len == 0 ? "not_enough_films"
               : worse && better       ? "mixed"
               : worse                 ? "worse"
               : better && !changed    ? "better"
               : better || changed     ? "mixed"
                                       : "stable";
}

static const CxrReportFilm *
film_by_id (const CxrReportData *d, gint64 id)
{
  for (guint i = 0; i < d->films->len; i++)
    if (g_array_index (d->films, CxrReportFilm, i).scan_id == id)
      return &g_array_index (d->films, CxrReportFilm, i);
  return NULL;
}

/* The difference maps the patient's rows name that are missing (each
 * map counted once: a pair of both kinds shares its map). */
guint
cxr__report_missing_maps (const CxrReportData *d)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint k = 0; k < d->pairs->len; k++)
    {
      const CxrReportPair *p = &g_array_index (d->pairs, CxrReportPair, k);
      if (p->overlay_missing)
        g_hash_table_add (seen, p->overlay_path);
    }
  return g_hash_table_size (seen);
}

/* The largest artifact a report reads (a 1024-px map or mask is well
 * under 2 MB). */
#define REPORT_ARTIFACT_MAX_BYTES ((guint64) 64 << 20)

/* An artifact the store names (@path, relative to its artifacts folder),
 * read whole, never from outside that folder (cxr__artifact_read), or
 * NULL. */
GBytes *
cxr__report_artifact (const CxrReportData *d, const char *path, GError **error)
{
  if (path == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED, "no artifact");
      return NULL;
    }
  gsize len = 0;
  guint8 *b = cxr__artifact_read (d->artifacts_dir, path, REPORT_ARTIFACT_MAX_BYTES, &len, error);
  return b ? g_bytes_new_take (b, len) : NULL;
}

static void
trend_set_free (gpointer p)
{
  CxrReportTrendSet *set = p;
  g_free (set->t);
  g_free (set->visits);
  if (set->trends)
    g_ptr_array_unref (set->trends);
  g_free (set);
}

/* What every trend set reads from the store: the same for each view. */
typedef struct {
  CxrSignalReader *reader; /* NULL: the store has no signals to read */
  GHashTable *limits;      /* signal name -> CxrLimit, or NULL */
  GPtrArray *findings;     /* the model's findings */
} TrendSources;

/* The trend set of @view (CxrReportTrendSet), with the films of unknown
 * view if @with_unknown; NULL with fewer than two films. */
static CxrReportTrendSet *
load_trend_set (const TrendSources *src, const CxrReportData *d, const char *view,
                gboolean with_unknown)
{
  g_autoptr (GPtrArray) fs = g_ptr_array_new ();
  for (guint i = 0; i < d->films->len; i++)
    {
      const CxrReportFilm *f = &g_array_index (d->films, CxrReportFilm, i);
      if (g_str_equal (f->status, "ok")
          && (g_str_equal (f->view_kind, view)
              || (with_unknown && g_str_equal (f->view_kind, "unknown"))))
        g_ptr_array_add (fs, (gpointer) f);
    }
  int n = (int) fs->len;
  if (n < 2)
    return NULL;
  CxrReportTrendSet *set = g_new0 (CxrReportTrendSet, 1);
  set->view = view;
  set->n = n;
  set->t = g_new (double, n);
  set->visits = g_new (int, n);
  set->trends = g_ptr_array_new_with_free_func (trend_free);
  const CxrReportFilm *const *f = (const CxrReportFilm *const *) fs->pdata;
  gboolean days = TRUE;
  for (int i = 0; i < n; i++)
    days = days && !isnan (f[i]->day) && (i == 0 || f[i]->day > f[i - 1]->day);
  for (int i = 0; i < n; i++)
    {
      set->t[i] = days ? f[i]->day - f[0]->day : f[i]->visit;
      set->visits[i] = f[i]->visit;
    }
  set->time_axis = days ? "days" : "visit";

  if (src->reader == NULL)
    return set;
  /* each signal's flag row for this view kind, and its limit */
  g_autoptr (GHashTable) flag_of = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint k = 0; k < d->flags->len; k++)
    {
      const CxrFlagRow *fl = &g_array_index (d->flags, CxrFlagRow, k);
      if (g_str_equal (fl->view_kind, view))
        g_hash_table_insert (flag_of, fl->signal, (gpointer) fl);
    }
  /* these first, then each finding */
  static const struct {
    const char *kind, *finding, *title;
  } fixed[] = {
    { "severity", "global", "Brixia severity, global (0-18)" },
    { "cardiothoracic_ratio", NULL, "heart size (cardiothoracic ratio)" },
    { "embedding_distance", NULL, "embedding drift from the first film" },
  };
  int nf = (int) G_N_ELEMENTS (fixed);
  for (int s = 0; s < nf + (int) src->findings->len; s++)
    {
      CxrSignal *sig = s < nf ? cxr_signal_new (fixed[s].kind, fixed[s].finding)
                              : cxr_signal_new ("probability", src->findings->pdata[s - nf]);
      g_autofree double *y = g_new (double, n);
      gboolean have = TRUE;
      for (int i = 0; i < n && have; i++)
        have = cxr__signal_value (src->reader, sig, f[0]->scan_id, f[i]->scan_id, &y[i]);
      if (!have)
        {
          cxr_signal_free (sig);
          continue;
        }
      CxrReportTrend *tr = g_new0 (CxrReportTrend, 1);
      tr->signal = sig;
      tr->title = g_strdup (s < nf ? fixed[s].title : sig->finding);
      tr->y = g_steal_pointer (&y);
      tr->flag = g_hash_table_lookup (flag_of, sig->name);
      tr->flagged = tr->flag
                    && (tr->flag->kind == CXR_TREND_SLOW_PROGRESSION
                        || tr->flag->kind == CXR_TREND_ACUTE_CHANGE
                        || tr->flag->kind == CXR_TREND_UNCONFIRMED_CHANGE);
      const CxrLimit *l = src->limits ? g_hash_table_lookup (src->limits, sig->name) : NULL;
      tr->limit = l ? (!isnan (l->visit_limit) ? MAX (l->retest, l->visit_limit) : l->retest) : NAN;
      g_ptr_array_add (set->trends, tr);
    }
  return set;
}

/* The trend sets (see CxrReportData): the more frequent view kind's,
 * with the films of unknown view, then the other's. */
static gboolean
load_trends (CxrStore *store, CxrReportData *d, GError **error)
{
  d->trend_sets = g_ptr_array_new_with_free_func (trend_set_free);
  if (d->model_id == 0)
    return TRUE;
  int npa = 0, nap = 0;
  for (guint i = 0; i < d->films->len; i++)
    {
      const CxrReportFilm *f = &g_array_index (d->films, CxrReportFilm, i);
      npa += g_str_equal (f->view_kind, "PA") && g_str_equal (f->status, "ok");
      nap += g_str_equal (f->view_kind, "AP") && g_str_equal (f->status, "ok");
    }
  const char *first = npa >= nap ? "PA" : "AP", *other = npa >= nap ? "AP" : "PA";
  g_autoptr (CxrSignalReader) reader = cxr__signals_reader_new (store, d->model_id, error);
  if (reader == NULL)
    return FALSE;
  g_autoptr (GHashTable) limits = cxr__store_limits (store, d->model_id, error);
  if (limits == NULL)
    return FALSE;
  g_autoptr (GPtrArray) findings = cxr__store_model_findings (store, d->model_id, error);
  if (findings == NULL)
    return FALSE;
  TrendSources src = { reader, limits, findings };
  CxrReportTrendSet *set = load_trend_set (&src, d, first, TRUE);
  if (set)
    g_ptr_array_add (d->trend_sets, set);
  set = load_trend_set (&src, d, other, FALSE);
  if (set)
    g_ptr_array_add (d->trend_sets, set);
  return TRUE;
}

/**
 * cxr__report_data_load:
 * Everything one patient's report shows, from the store.
 *
 * Returns: (transfer full): the report's data, or %NULL with @error set
 * (no such patient, or the store could not be read).
 */
CxrReportData *
cxr__report_data_load (CxrStore *store, const char *pid, GError **error)
{
  g_autoptr (CxrReportData) d = g_new0 (CxrReportData, 1);
  d->patient_id = g_strdup (pid);
  if (!cxr__store_patient (store, pid, &d->patient, error))
    return NULL;
  d->films = cxr__store_patient_films (store, pid, error);
  if (d->films == NULL || !cxr__store_film_severity (store, d->films, error))
    return NULL;
  d->model_id = cxr__store_patient_model (store, pid, &d->model_name, &d->model_sha256, error);
  if (d->model_id < 0)
    return NULL;
  d->store_path = g_strdup (cxr_store_path (store));
  CxrImageLimits lim = CXR_IMAGE_LIMITS_DEFAULT;
  d->limits = lim;
  if (!cxr_store_dicom_voi (store, &d->limits.voi, NULL, error))
    return NULL;
  d->artifacts_dir = cxr_store_artifacts_dir (store);
  d->flags = cxr__store_patient_flags (store, pid, error);
  if (d->flags == NULL || !load_trends (store, d, error))
    return NULL;
  load_events (d);
  /* the pairs whose two films are the patient's (always, in a sound store) */
  g_autoptr (GArray) pairs = cxr__store_patient_pairs (store, pid, d->model_id, error);
  if (pairs == NULL)
    return NULL;
  d->pairs = g_array_new (FALSE, TRUE, sizeof (CxrReportPair));
  g_array_set_clear_func (d->pairs, cxr__report_pair_clear);
  d->pair_films = g_ptr_array_new ();
  for (guint k = 0; k < pairs->len; k++)
    {
      CxrReportPair *p = &g_array_index (pairs, CxrReportPair, k);
      const CxrReportFilm *f = film_by_id (d, p->fixed_id), *m = film_by_id (d, p->moving_id);
      if (f == NULL || m == NULL)
        continue;
      if (p->overlay_path)
        {
          int fd = cxr__artifact_open (d->artifacts_dir, p->overlay_path, NULL, NULL);
          p->overlay_missing = fd < 0;
          if (fd >= 0)
            close (fd);
        }
      g_array_append_val (d->pairs, *p);
      memset (p, 0, sizeof *p);
      g_ptr_array_add (d->pair_films, (gpointer) f);
      g_ptr_array_add (d->pair_films, (gpointer) m);
    }
  return g_steal_pointer (&d);
}

/**
 * cxr_report_page_name:
 * The file name of a patient's page: patient_ID.html (or .json) with the
 * id made safe (cxr__safe_name: only letters, digits and '.-_=', two
 * patients never share a page, and the name has a bounded length).
 *
 * Returns: (transfer full): the name.
 */
char *
cxr_report_page_name (const char *pid, CxrReportFormat format)
{
  g_autofree char *safe = cxr__safe_name (pid);
  return g_strdup_printf ("patient_%s.%s", safe, format == CXR_REPORT_HTML ? "html" : "json");
}

/* Writes a report for its owner's eyes only: it holds patient data. */
static gboolean
write_private (const char *path, const char *data, gssize len, GError **error)
{
  g_autoptr (GError) werr = NULL;
  if (g_file_set_contents_full (path, data, len, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &werr))
    return TRUE;
  g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: %s", path, werr->message);
  return FALSE;
}

/**
 * cxr_report_patient:
 * @stats: (nullable): what was written and found is added to it
 *
 * Writes DIR/patient_ID.html (or .json) for one patient
 * (cxr_report_page_name).
 *
 * Returns: (transfer full): the path written, or %NULL with @error set.
 */
char *
cxr_report_patient (CxrStore *store, const char *pid, const char *out_dir, CxrReportFormat fmt,
                    CxrReportStats *stats, GError **error)
{
  CxrReportStats own = { 0 };
  if (stats == NULL)
    stats = &own;
  g_autoptr (CxrReportData) d = cxr__report_data_load (store, pid, error);
  if (d == NULL)
    return NULL;
  g_autofree char *name = cxr_report_page_name (pid, fmt);
  g_autofree char *path = g_build_filename (out_dir, name, NULL);
  gboolean ok;
  if (fmt == CXR_REPORT_HTML)
    {
      GString *h = cxr__report_html (d, stats);
      ok = write_private (path, h->str, (gssize) h->len, error);
      g_string_free (h, TRUE);
    }
  else
    {
      g_autofree char *json = cxr__report_json (d);
      ok = write_private (path, json, -1, error);
      stats->n_missing_artifacts += cxr__report_missing_maps (d);
    }
  if (!ok)
    return NULL;
  stats->n_pages++;
  return g_steal_pointer (&path);
}

/* Pages written by several threads, each with its own read-only
 * connection to the store (one SQLite connection is not shared). */
typedef struct {
  const char *db, *out_dir;
  GPtrArray *ids; /* patients whose pages to write */
  gint next;      /* atomic: the next index of ids */
  GMutex lock;
  CxrReportStats stats; /* summed under lock */
  GError *error;        /* the first one; the others stop when set */
} PageRun;

static void
stats_add (CxrReportStats *to, const CxrReportStats *from)
{
  to->n_pages += from->n_pages;
  to->n_missing_artifacts += from->n_missing_artifacts;
  to->n_changed_films += from->n_changed_films;
}

static gpointer
page_worker (gpointer data)
{
  PageRun *run = data;
  GError *err = NULL;
  CxrStore *store = cxr_store_open (run->db, CXR_STORE_READ_ONLY | CXR_STORE_NO_CREATE, &err);
  CxrReportStats mine = { 0 };
  while (store && err == NULL)
    {
      guint i = (guint) g_atomic_int_add (&run->next, 1);
      g_mutex_lock (&run->lock);
      gboolean stop = run->error != NULL;
      g_mutex_unlock (&run->lock);
      if (stop || i >= run->ids->len)
        break;
      g_autofree char *p = cxr_report_patient (store, run->ids->pdata[i], run->out_dir,
                                               CXR_REPORT_HTML, &mine, &err);
    }
  g_mutex_lock (&run->lock);
  if (err && run->error == NULL)
    run->error = err;
  else
    g_clear_error (&err);
  stats_add (&run->stats, &mine);
  g_mutex_unlock (&run->lock);
  if (store)
    cxr_store_free (store);
  return NULL;
}

/**
 * cxr_report_cohort:
 * @stats: (nullable): what was written and found is added to it
 *
 * Writes DIR/index.html: flagged patients first (sortable), counts per
 * finding, a link to each patient's page; and with @options->pages the
 * pages of the patients with a registration (only the flagged ones with
 * @options->flagged, only one shard's with @options->shard), @options->jobs
 * at a time. A page that cannot be written (a full disk, a folder gone)
 * stops the run: the error names it.
 */
char *
cxr_report_cohort (CxrStore *store, const char *out_dir, const CxrReportOptions *o,
                   CxrReportStats *stats, GError **error)
{
  int np = 0, nf = 0, nfl = 0;
  if (!cxr__store_cohort_counts (store, &np, &nf, &nfl, error))
    return NULL;
  g_autoptr (GArray) rows = cxr__store_index_rows (store, error);
  if (rows == NULL)
    return NULL;
  g_autoptr (GArray) findings = cxr__store_finding_counts (store, error);
  if (findings == NULL)
    return NULL;
  GString *h = cxr__report_index_html (np, nf, nfl, rows, findings);
  g_autofree char *path = g_build_filename (out_dir, "index.html", NULL);
  gboolean ok = write_private (path, h->str, (gssize) h->len, error);
  g_string_free (h, TRUE);
  if (!ok || !o->pages)
    return ok ? g_steal_pointer (&path) : NULL;
  g_autoptr (GPtrArray) ids = g_ptr_array_new ();
  for (guint i = 0; i < rows->len; i++)
    {
      const CxrIndexRow *r = &g_array_index (rows, CxrIndexRow, i);
      if (r->has_pairs && (!o->flagged || r->n_flags > 0)
          && cxr_shard_contains (&o->shard, r->patient_id))
        g_ptr_array_add (ids, r->patient_id);
    }
  int jobs = o->jobs > 0 ? o->jobs : (int) g_get_num_processors ();
  jobs = (int) MIN ((guint) jobs, MAX (ids->len, 1));
  PageRun run = { .db = cxr_store_path (store), .out_dir = out_dir, .ids = ids };
  g_mutex_init (&run.lock);
  g_autofree GThread **threads = g_new (GThread *, jobs);
  for (int t = 0; t < jobs; t++)
    threads[t] = g_thread_new ("cxr-report", page_worker, &run);
  for (int t = 0; t < jobs; t++)
    g_thread_join (threads[t]);
  g_mutex_clear (&run.lock);
  if (stats)
    stats_add (stats, &run.stats);
  if (run.error)
    {
      g_propagate_error (error, run.error);
      return NULL;
    }
  return g_steal_pointer (&path);
}

/**
 * cxr_report_index:
 * @stats: (nullable): what was written and found is added to it
 *
 * cxr_report_cohort() with every page (@pages) or none, one per core.
 */
char *
cxr_report_index (CxrStore *store, const char *out_dir, gboolean pages, CxrReportStats *stats,
                  GError **error)
{
  CxrReportOptions o = { .pages = pages };
  return cxr_report_cohort (store, out_dir, &o, stats, error);
}
