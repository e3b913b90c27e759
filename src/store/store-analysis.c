/* SPDX-License-Identifier: MIT
 *
 * The store's side of `analyze`: which patients have work, one patient's
 * pending work (films to score, pairs to register, stored registrations
 * for the chain checks, maps still to make), and the writers of its
 * results (registrations, predictions, difference maps), which the
 * pipeline calls inside one transaction per patient.
 */
#include <string.h>

#include "cxr/error.h"
#include "store-db.h"
#include "store-private.h"
#include "util-private.h"

void
cxr__film_row_clear (gpointer row)
{
  CxrFilmRow *f = row;
  g_free (f->path);
  g_free (f->sha256);
  g_free (f->image_index);
}

void
cxr__pair_row_clear (gpointer row)
{
  CxrPairRow *p = row;
  g_free (p->fixed_path);
  g_free (p->moving_path);
  g_free (p->fixed_sha256);
  g_free (p->moving_sha256);
  g_free (p->stem);
}

void
cxr__patient_work_init (CxrPatientWork *w)
{
  GArray **films[] = { &w->films, &w->lung_films };
  for (guint k = 0; k < G_N_ELEMENTS (films); k++)
    {
      *films[k] = g_array_new (FALSE, TRUE, sizeof (CxrFilmRow));
      g_array_set_clear_func (*films[k], cxr__film_row_clear);
    }
  GArray **pairs[] = { &w->pending, &w->stored, &w->maps };
  for (guint k = 0; k < G_N_ELEMENTS (pairs); k++)
    {
      *pairs[k] = g_array_new (FALSE, TRUE, sizeof (CxrPairRow));
      g_array_set_clear_func (*pairs[k], cxr__pair_row_clear);
    }
}

void
cxr__patient_work_clear (CxrPatientWork *w)
{
  g_clear_pointer (&w->films, g_array_unref);
  g_clear_pointer (&w->lung_films, g_array_unref);
  g_clear_pointer (&w->pending, g_array_unref);
  g_clear_pointer (&w->stored, g_array_unref);
  g_clear_pointer (&w->maps, g_array_unref);
}

/**
 * cxr__store_model_row:
 * The model's row, added the first time a file with its sha256 is used
 * (classifiers and lung segmenters alike).
 *
 * Returns: its model_id, or -1 with @error set.
 */
gint64
cxr__store_model_row (CxrStore *store, const CxrModelRow *r, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "INSERT INTO models (name, architecture, sha256, classes, metadata, input_size, embedding_dim)"
      " VALUES (?,?,?,?,?,?,?) ON CONFLICT (sha256) DO NOTHING",
      error);
  if (st == NULL)
    return -1;
  sqlite3_bind_text (st, 1, r->name, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, r->architecture, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, r->sha256, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 4, r->classes, -1, SQLITE_STATIC);
  cxr__bind_text_or_null (st, 5, r->metadata);
  sqlite3_bind_int (st, 6, r->input_size);
  sqlite3_bind_int (st, 7, r->embedding_dim);
  gboolean ok = cxr__store_step_done (store, st, "adding the model", error);
  sqlite3_finalize (st);
  if (!ok)
    return -1;
  st = cxr__store_prepare (store, "SELECT model_id FROM models WHERE sha256 = ?", error);
  if (st == NULL)
    return -1;
  sqlite3_bind_text (st, 1, r->sha256, -1, SQLITE_STATIC);
  gint64 id = sqlite3_step (st) == SQLITE_ROW ? sqlite3_column_int64 (st, 0) : -1;
  sqlite3_finalize (st);
  if (id < 0)
    cxr__store_fail (store, error, "finding the model");
  return id;
}

/* SQL condition on a registration r: its difference map is still to make,
 * because it has none yet or one made before the trend score existed
 * (schema 0006), which is made again. Used to find the patients with work
 * and, per patient, the stored pairs to compare. */
#define MAP_PENDING                                                                                \
  "r.status <> 'failed' AND NOT EXISTS (SELECT 1 FROM pair_changes c"                              \
  " WHERE c.fixed_scan_id = r.fixed_scan_id AND c.moving_scan_id = r.moving_scan_id"               \
  " AND c.kind = r.kind AND c.trend_score IS NOT NULL)"

/* SQL condition on a frontal film f: the classifier ?2 has not scored
 * it, or the zone-score head ?5 (when > 0) has not. */
#define FILM_PENDING                                                                               \
  "(NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.scan_id = f.scan_id AND e.model_id = ?2)"       \
  " OR (?5 > 0 AND NOT EXISTS (SELECT 1 FROM film_severity v"                                      \
  " WHERE v.scan_id = f.scan_id AND v.model_id = ?5)))"

/* A film whose lung fields model @P (a parameter) has not found, or found
 * before the heart was measured from them (schema 23) */
#define LUNGS_PENDING(P)                                                                           \
  "NOT EXISTS (SELECT 1 FROM lung_fields l WHERE l.scan_id = f.scan_id AND l.model_id = " P        \
  " AND l.heart_measured)"
/* with the lung model at ?4, named apart so that the query below reads
 * as one string */
#define LUNGS_PENDING_4 LUNGS_PENDING ("?4")

/**
 * cxr__store_patients_with_work:
 * @model_id: films without this model's results are work; 0: no model
 * @maps: registrations without a difference map are work
 *
 * Returns: (transfer full) (element-type utf8): patient ids, in order.
 */
GPtrArray *
cxr__store_patients_with_work (CxrStore *store, const CxrModelIds *ids, gboolean maps,
                               GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT patient_id FROM pending_registrations UNION"
      " SELECT patient_id FROM frontal_scans f WHERE ?1 AND " FILM_PENDING " UNION"
      " SELECT patient_id FROM frontal_scans f WHERE ?4 > 0 AND " LUNGS_PENDING_4 " UNION"
      " SELECT m.patient_id FROM registrations r JOIN scans m ON m.scan_id = r.moving_scan_id"
      "  WHERE ?3 AND " MAP_PENDING " ORDER BY 1",
      error);
  if (st == NULL)
    return NULL;
  sqlite3_bind_int (st, 1, ids->classifier > 0);
  sqlite3_bind_int64 (st, 2, ids->classifier);
  sqlite3_bind_int (st, 3, maps);
  sqlite3_bind_int64 (st, 4, ids->lungs);
  sqlite3_bind_int64 (st, 5, ids->severity);
  GPtrArray *patients = g_ptr_array_new_with_free_func (g_free);
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (patients, g_strdup (cxr__col_text (st, 0)));
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    {
      g_ptr_array_unref (patients);
      cxr__store_fail (store, error, "listing patients");
      return NULL;
    }
  return patients;
}

static CxrRegisterStatus
status_of (const char *s)
{
  return g_str_equal (s, "ok")       ? CXR_REGISTER_OK
         : g_str_equal (s, "failed") ? CXR_REGISTER_FAILED
                                     : CXR_REGISTER_LOW_CONFIDENCE;
}

/* A stored registration read from the columns dx_px, dy_px, angle_deg,
 * scale, status, fixed_aspect, moving_aspect (the aspects coalesced to 1),
 * in that order from @col. */
#define STORED_TRANSFORM_COLUMNS                                                                   \
  "r.dx_px, r.dy_px, r.angle_deg, r.scale, min(r.status),"                                         \
  " coalesce(r.fixed_aspect, 1), coalesce(r.moving_aspect, 1),"                                    \
  " r.deform_nx, r.deform_ny, r.deform_field"

/**
 * cxr__col_deform_field:
 * The deformable field of a stored registration: columns deform_nx,
 * deform_ny, deform_field (2 x ny x nx float32, ux then uy) from @col;
 * none when they do not describe one.
 */
void
cxr__col_deform_field (sqlite3_stmt *st, int col, CxrDeformField *f)
{
  memset (f, 0, sizeof *f);
  int nx = sqlite3_column_int (st, col), ny = sqlite3_column_int (st, col + 1);
  const void *blob = sqlite3_column_blob (st, col + 2);
  int bytes = sqlite3_column_bytes (st, col + 2);
  if (nx < 4 || ny < 4 || nx > CXR_DEFORM_MAX || ny > CXR_DEFORM_MAX || blob == NULL
      || bytes != (int) sizeof (float) * 2 * nx * ny)
    return;
  f->nx = nx;
  f->ny = ny;
  memcpy (f->ux, blob, sizeof (float) * nx * ny);
  memcpy (f->uy, (const float *) blob + nx * ny, sizeof (float) * nx * ny);
}

static void
stored_transform (sqlite3_stmt *st, int col, CxrRegistration *r)
{
  r->dx_px = sqlite3_column_double (st, col);
  r->dy_px = sqlite3_column_double (st, col + 1);
  r->angle_deg = sqlite3_column_double (st, col + 2);
  r->scale = sqlite3_column_double (st, col + 3);
  r->status = status_of (cxr__col_text (st, col + 4));
  r->fixed_aspect = sqlite3_column_double (st, col + 5);
  r->moving_aspect = sqlite3_column_double (st, col + 6);
  cxr__col_deform_field (st, col + 7, &r->field);
  r->deformable = r->field.nx > 0;
}

/* The first columns of a pair's row (PAIR_HEAD_COLUMNS, over scans f
 * and m): fixed and moving scan ids, the kinds grouped ("previous",
 * "baseline" or both), fixed and moving paths and hashes. */
#define PAIR_HEAD_COLUMNS "f.path, m.path, f.sha256, m.sha256, f.visit, m.visit"
#define PAIR_HEAD_N       9

static CxrPairRow
pair_head (sqlite3_stmt *st)
{
  CxrPairRow p = { sqlite3_column_int64 (st, 0), sqlite3_column_int64 (st, 1) };
  const char *kinds = cxr__col_text (st, 2);
  p.is_previous = strstr (kinds, "previous") != NULL;
  p.is_baseline = strstr (kinds, "baseline") != NULL;
  p.fixed_path = g_strdup (cxr__col_text (st, 3));
  p.moving_path = g_strdup (cxr__col_text (st, 4));
  p.fixed_sha256 = g_strdup (cxr__col_text (st, 5));
  p.moving_sha256 = g_strdup (cxr__col_text (st, 6));
  p.fixed_visit = sqlite3_column_int (st, 7);
  p.moving_visit = sqlite3_column_int (st, 8);
  return p;
}

/* The artifact stem and pixel spacing of every film of a patient. A
 * pair's files are named FIXED+MOVING from the films' image indexes made
 * safe (cxr__safe_name: injective, bounded), so no two pairs share one. */
typedef struct {
  GHashTable *stem, *spacing;
} FilmNames;

static gboolean
film_names_load (CxrStore *store, const char *patient_id, FilmNames *fn, GError **error)
{
  fn->stem = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  fn->spacing = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  sqlite3_stmt *st = cxr__store_prepare (
      store, "SELECT scan_id, image_index, pixel_spacing_mm FROM scans WHERE patient_id = ?",
      error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, patient_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      gpointer id = GINT_TO_POINTER (sqlite3_column_int64 (st, 0));
      char *name = cxr__safe_name (cxr__col_text (st, 1));
      g_hash_table_insert (fn->stem, id, name);
      double sp = cxr__col_double (st, 2);
      g_hash_table_insert (fn->spacing, id, g_memdup2 (&sp, sizeof sp));
    }
  sqlite3_finalize (st);
  return TRUE;
}

static void
film_names_clear (FilmNames *fn)
{
  g_clear_pointer (&fn->stem, g_hash_table_unref);
  g_clear_pointer (&fn->spacing, g_hash_table_unref);
}

/* Sets a pair's artifact stem and FIXED's spacing. */
static void
film_names_apply (const FilmNames *fn, CxrPairRow *p)
{
  p->stem = g_strdup_printf (
      "%s+%s", (char *) g_hash_table_lookup (fn->stem, GINT_TO_POINTER (p->fixed_id)),
      (char *) g_hash_table_lookup (fn->stem, GINT_TO_POINTER (p->moving_id)));
  p->fixed_spacing_mm
      = *(double *) g_hash_table_lookup (fn->spacing, GINT_TO_POINTER (p->fixed_id));
}

/* The patient's frontal films where @pending holds: ?2 is @model_id, ?5
 * @severity_id. */
static gboolean
load_films (CxrStore *store, const char *patient_id, const char *pending, gint64 model_id,
            gint64 severity_id, GArray *films, GError **error)
{
  g_autofree char *sql = g_strdup_printf (
      "SELECT f.scan_id, f.path, f.sha256, f.image_index, f.pixel_spacing_mm, a.pixel_aspect,"
      " f.visit FROM frontal_scans f JOIN scan_pixel_aspect a USING (scan_id)"
      " WHERE f.patient_id = ?1 AND %s ORDER BY f.visit",
      pending);
  sqlite3_stmt *fs = cxr__store_prepare (store, sql, error);
  if (fs == NULL)
    return FALSE;
  sqlite3_bind_text (fs, 1, patient_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (fs, 2, model_id);
  sqlite3_bind_int64 (fs, 5, severity_id);
  while (sqlite3_step (fs) == SQLITE_ROW)
    {
      CxrFilmRow f = { sqlite3_column_int64 (fs, 0),     g_strdup (cxr__col_text (fs, 1)),
                       g_strdup (cxr__col_text (fs, 2)), g_strdup (cxr__col_text (fs, 3)),
                       cxr__col_double (fs, 4),          sqlite3_column_double (fs, 5),
                       sqlite3_column_int (fs, 6) };
      g_array_append_val (films, f);
    }
  sqlite3_finalize (fs);
  return TRUE;
}

/**
 * cxr_store_find_film:
 * @path: (out) (transfer full): the film's file
 * @aspect: (out): its pixel height over width in the patient
 *
 * Looks film @image_index up in the store; FALSE with
 * CXR_ERROR_INVALID_INPUT when the store has no film of that name with a
 * file.
 */
gboolean
cxr_store_find_film (CxrStore *store, const char *image_index, char **path, double *aspect,
                     GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT s.scan_id, s.path, s.sha256, s.image_index, s.pixel_spacing_mm, a.pixel_aspect"
      "  FROM scans s JOIN scan_pixel_aspect a USING (scan_id) WHERE s.image_index = ?1"
      " AND s.path IS NOT NULL",
      error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, image_index, -1, SQLITE_STATIC);
  gboolean found = sqlite3_step (st) == SQLITE_ROW && sqlite3_column_type (st, 1) != SQLITE_NULL;
  if (found)
    {
      *path = g_strdup (cxr__col_text (st, 1));
      *aspect = sqlite3_column_double (st, 5);
    }
  else
    g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "no film '%s' with a file in the store",
                 image_index);
  sqlite3_finalize (st);
  return found;
}

static gboolean
load_pending (CxrStore *store, const char *patient_id, GArray *pending, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT pr.fixed_scan_id, pr.moving_scan_id, group_concat(pr.kind), " PAIR_HEAD_COLUMNS ","
      "       f.view_kind <> m.view_kind, fa.pixel_aspect, ma.pixel_aspect"
      "  FROM pending_registrations pr JOIN scans f ON f.scan_id = pr.fixed_scan_id"
      "  JOIN scans m ON m.scan_id = pr.moving_scan_id"
      "  JOIN scan_pixel_aspect fa ON fa.scan_id = f.scan_id"
      "  JOIN scan_pixel_aspect ma ON ma.scan_id = m.scan_id"
      " WHERE pr.patient_id = ? GROUP BY 1, 2 ORDER BY pr.visit, f.visit DESC",
      error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, patient_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      CxrPairRow p = pair_head (st);
      p.cross_view = sqlite3_column_int (st, PAIR_HEAD_N);
      p.fixed_aspect = sqlite3_column_double (st, PAIR_HEAD_N + 1);
      p.moving_aspect = sqlite3_column_double (st, PAIR_HEAD_N + 2);
      g_array_append_val (pending, p);
    }
  sqlite3_finalize (st);
  return TRUE;
}

/* Stored registrations with a transform (@where: "r.dx_px IS NOT NULL"),
 * or those whose map is still to make (MAP_PENDING). */
static gboolean
load_stored (CxrStore *store, const char *patient_id, const char *where, GArray *out,
             GError **error)
{
  g_autofree char *sql = g_strconcat (
      "SELECT r.fixed_scan_id, r.moving_scan_id, group_concat(r.kind), " PAIR_HEAD_COLUMNS
      ", " STORED_TRANSFORM_COLUMNS
      "  FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id"
      "  JOIN scans m ON m.scan_id = r.moving_scan_id"
      " WHERE m.patient_id = ? AND ",
      where, " GROUP BY 1, 2", NULL);
  sqlite3_stmt *st = cxr__store_prepare (store, sql, error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, patient_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      CxrPairRow p = pair_head (st);
      stored_transform (st, PAIR_HEAD_N, &p.stored);
      g_array_append_val (out, p);
    }
  sqlite3_finalize (st);
  return TRUE;
}

/**
 * cxr__store_load_work:
 * One patient's pending work, read on the calling thread (which owns the
 * connection) for a worker. @out: initialised with
 * cxr__patient_work_init(); on failure it holds what was read.
 */
gboolean
cxr__store_load_work (CxrStore *store, const char *patient_id, const CxrModelIds *ids,
                      gboolean maps, CxrPatientWork *out, GError **error)
{
  if (ids->classifier > 0
      && !load_films (store, patient_id, FILM_PENDING, ids->classifier, ids->severity, out->films,
                      error))
    return FALSE;
  if (ids->lungs > 0
      && !load_films (store, patient_id, LUNGS_PENDING ("?2"), ids->lungs, 0, out->lung_films,
                      error))
    return FALSE;
  if (!load_pending (store, patient_id, out->pending, error)
      || !load_stored (store, patient_id, "r.dx_px IS NOT NULL", out->stored, error))
    return FALSE;
  if (!maps)
    return TRUE;
  if (!load_stored (store, patient_id, MAP_PENDING, out->maps, error))
    return FALSE;
  FilmNames fn;
  gboolean ok = film_names_load (store, patient_id, &fn, error);
  GArray *with_maps[] = { out->pending, out->maps };
  for (guint k = 0; ok && k < G_N_ELEMENTS (with_maps); k++)
    for (guint i = 0; i < with_maps[k]->len; i++)
      film_names_apply (&fn, &g_array_index (with_maps[k], CxrPairRow, i));
  film_names_clear (&fn);
  return ok;
}

/* --- writing ----------------------------------------------------------------- */

static const char insert_registration[]
    = "INSERT OR REPLACE INTO registrations (fixed_scan_id, moving_scan_id, kind, dx_px, dy_px,"
      " angle_deg, scale, confidence, status, cross_view, elapsed_ms, method, ncc_before,"
      " ncc_after, psr, asymmetry_px, fixed_aspect, moving_aspect, transitivity_px, reason, run_id,"
      " ncc_global, ncc_region, lung_dice_before, lung_dice_after, deformable,"
      " rms_displacement_px, max_displacement_px, folds, deform_nx, deform_ny, deform_field,"
      " global_confidence, jacobian_min, jacobian_max)"
      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
static const char insert_embedding[]
    = "INSERT OR REPLACE INTO embeddings"
      " (scan_id, model_id, dim, vector, run_id) VALUES (?,?,?,?,?)";
static const char insert_prediction[]
    = "INSERT OR REPLACE INTO predictions"
      " (scan_id, model_id, finding, probability) VALUES (?,?,?,?)";
static const char insert_heatmap[]
    = "INSERT OR REPLACE INTO heatmaps (scan_id, model_id, finding, width, height, data)"
      " VALUES (?,?,?,?,?,?)";
static const char insert_change[]
    = "INSERT OR REPLACE INTO pair_changes (fixed_scan_id, moving_scan_id, kind, change_score,"
      " change_energy, changed_area_px, changed_area_mm2, peak_x_px, peak_y_px, peak_value,"
      " threshold, noise_sigma, mask_area_px, embedding_distance, feature_change,"
      " trend_score, trend_threshold, model_id, overlay_path, map_path, elapsed_ms, method, run_id,"
      " mask_kind, map_scale) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
static const char insert_lungs[]
    = "INSERT OR REPLACE INTO lung_fields (scan_id, model_id, right_area_px, left_area_px,"
      " right_area_mm2, left_area_mm2, lung_fraction, bbox_x0, bbox_y0, bbox_x1, bbox_y1,"
      " quality, status, reason, mask_path, elapsed_ms, run_id, airless_side,"
      " cardiothoracic_ratio, heart_measured) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)";
static const char insert_severity[]
    = "INSERT OR REPLACE INTO film_severity (scan_id, model_id, global, status, reason,"
      " zone_method, run_id) VALUES (?,?,?,?,?,?,?)";
static const char insert_zone_score[]
    = "INSERT OR REPLACE INTO zone_scores (scan_id, model_id, zone, score, row0, row1, area_px)"
      " VALUES (?,?,?,?,?,?,?)";
static const char insert_zone[]
    = "INSERT OR REPLACE INTO pair_change_regions (fixed_scan_id, moving_scan_id, kind, region,"
      " area_px, change_score, mean_d) VALUES (?,?,?,?,?,?,?)";
static const char insert_finding_change[]
    = "INSERT OR REPLACE INTO pair_finding_changes (fixed_scan_id, moving_scan_id, kind,"
      " model_id, finding, probability_delta, heatmap_delta_max) VALUES (?,?,?,?,?,?,?)";

struct _CxrAnalysisWriter {
  CxrStore *store;
  const CxrModel *model;
  gint64 model_id, lung_model_id, severity_id, run_id;
  sqlite3_stmt *reg, *emb, *pred, *heat, *chg, *fchg, *zone, *lungs, *orient, *sev, *zsc;
};

void
cxr__analysis_writer_free (CxrAnalysisWriter *w)
{
  if (w == NULL)
    return;
  sqlite3_stmt *all[] = { w->reg,  w->emb,   w->pred,   w->heat, w->chg, w->fchg,
                          w->zone, w->lungs, w->orient, w->sev,  w->zsc };
  for (guint k = 0; k < G_N_ELEMENTS (all); k++)
    sqlite3_finalize (all[k]);
  g_free (w);
}

/**
 * cxr__analysis_writer_new:
 * @model: (nullable): with a model, predictions can be written
 * @maps: difference maps can be written
 *
 * Returns: (transfer full): the writer, or %NULL with @error set.
 */
CxrAnalysisWriter *
cxr__analysis_writer_new (CxrStore *store, const CxrModel *model, const CxrModelIds *ids,
                          gboolean maps, gint64 run_id, GError **error)
{
  g_autoptr (CxrAnalysisWriter) w = g_new0 (CxrAnalysisWriter, 1);
  w->store = store;
  w->model = model;
  w->model_id = ids->classifier;
  w->lung_model_id = ids->lungs;
  w->severity_id = ids->severity;
  w->run_id = run_id;
  if (!cxr__store_prepare_all (store, error, &w->reg, insert_registration, &w->orient,
                               "UPDATE scans SET orientation = ? WHERE scan_id = ?", NULL))
    return NULL;
  if (model
      && !cxr__store_prepare_all (store, error, &w->emb, insert_embedding, &w->pred,
                                  insert_prediction, &w->heat, insert_heatmap, NULL))
    return NULL;
  if (maps
      && !cxr__store_prepare_all (store, error, &w->chg, insert_change, &w->fchg,
                                  insert_finding_change, &w->zone, insert_zone, NULL))
    return NULL;
  if (ids->lungs > 0 && !cxr__store_prepare_all (store, error, &w->lungs, insert_lungs, NULL))
    return NULL;
  if (ids->severity > 0
      && !cxr__store_prepare_all (store, error, &w->sev, insert_severity, &w->zsc,
                                  insert_zone_score, NULL))
    return NULL;
  return g_steal_pointer (&w);
}

/**
 * cxr__analysis_write_orientation:
 * What analyze found of how film @scan_id is stored ("upside_down").
 */
gboolean
cxr__analysis_write_orientation (CxrAnalysisWriter *w, gint64 scan_id, const char *orientation,
                                 GError **error)
{
  sqlite3_bind_text (w->orient, 1, orientation, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (w->orient, 2, scan_id);
  return cxr__store_step_done (w->store, w->orient, "storing a film's orientation", error);
}

/**
 * cxr__analysis_write_registration:
 * One row of @pair, of @kind ("previous" or "baseline"). Without a
 * transform (@error_text set: the films could not be read) the transform
 * columns are NULL; @chain_px is NAN when no chain was checked.
 */
gboolean
cxr__analysis_write_registration (CxrAnalysisWriter *w, const CxrPairRow *p, const char *kind,
                                  const CxrRegistration *r, double chain_px, const char *error_text,
                                  const char *method, GError **error)
{
  sqlite3_stmt *ins = w->reg;
  int i = 1;
  sqlite3_bind_int64 (ins, i++, p->fixed_id);
  sqlite3_bind_int64 (ins, i++, p->moving_id);
  sqlite3_bind_text (ins, i++, kind, -1, SQLITE_STATIC);
  gboolean have = error_text == NULL;
  double v[] = { r->dx_px, r->dy_px, r->angle_deg, r->scale, r->confidence };
  for (guint q = 0; q < G_N_ELEMENTS (v); q++, i++)
    if (have)
      sqlite3_bind_double (ins, i, v[q]);
  sqlite3_bind_text (ins, i++, cxr_register_status_name (r->status), -1, SQLITE_STATIC);
  sqlite3_bind_int (ins, i++, p->cross_view);
  sqlite3_bind_double (ins, i++, r->elapsed_ms);
  sqlite3_bind_text (ins, i++, method, -1, SQLITE_STATIC);
  double ev[]
      = { r->ncc_before, r->ncc_after, r->psr, r->asymmetry_px, r->fixed_aspect, r->moving_aspect };
  for (guint q = 0; q < G_N_ELEMENTS (ev); q++, i++)
    if (have)
      sqlite3_bind_double (ins, i, ev[q]);
  cxr__bind_double_or_null (ins, i++, chain_px);
  cxr__bind_text_or_null (ins, i++, error_text ? error_text : r->reason);
  sqlite3_bind_int64 (ins, i++, w->run_id);
  /* the deformable stage's evidence and field */
  double dv[] = { r->ncc_global };
  for (guint q = 0; q < G_N_ELEMENTS (dv); q++, i++)
    if (have)
      sqlite3_bind_double (ins, i, dv[q]);
  if (have && r->ncc_region)
    sqlite3_bind_text (ins, i, r->ncc_region, -1, SQLITE_STATIC);
  i++;
  cxr__bind_double_or_null (ins, i++, have ? r->lung_dice_before : NAN);
  cxr__bind_double_or_null (ins, i++, have ? r->lung_dice_after : NAN);
  sqlite3_bind_int (ins, i++, have && r->deformable);
  g_autofree float *field = NULL;
  if (have && r->deformable)
    {
      int nc = r->field.nx * r->field.ny;
      field = g_new (float, 2 * nc);
      memcpy (field, r->field.ux, sizeof (float) * nc);
      memcpy (field + nc, r->field.uy, sizeof (float) * nc);
      sqlite3_bind_double (ins, i++, r->rms_displacement_px);
      sqlite3_bind_double (ins, i++, r->max_displacement_px);
      sqlite3_bind_int (ins, i++, r->folds);
      sqlite3_bind_int (ins, i++, r->field.nx);
      sqlite3_bind_int (ins, i++, r->field.ny);
      sqlite3_bind_blob (ins, i++, field, (int) (sizeof (float) * 2 * nc), SQLITE_STATIC);
    }
  else
    for (int q = 0; q < 6; q++)
      sqlite3_bind_null (ins, i++);
  cxr__bind_double_or_null (ins, i++, have ? r->global_confidence : NAN);
  cxr__bind_double_or_null (ins, i++, have && r->deformable ? r->jacobian_min : NAN);
  cxr__bind_double_or_null (ins, i++, have && r->deformable ? r->jacobian_max : NAN);
  return cxr__store_step_done (w->store, ins, "storing a registration", error);
}

/**
 * cxr__analysis_write_prediction:
 * A film's embedding, and per finding its probability and class
 * activation map.
 */
gboolean
cxr__analysis_write_prediction (CxrAnalysisWriter *w, gint64 scan_id, const CxrPrediction *p,
                                GError **error)
{
  g_return_val_if_fail (w->emb != NULL, FALSE);
  sqlite3_bind_int64 (w->emb, 1, scan_id);
  sqlite3_bind_int64 (w->emb, 2, w->model_id);
  sqlite3_bind_int (w->emb, 3, p->dim);
  /* float32 in host order: little-endian on every platform we build for */
  G_STATIC_ASSERT (G_BYTE_ORDER == G_LITTLE_ENDIAN);
  sqlite3_bind_blob (w->emb, 4, p->embedding, p->dim * 4, SQLITE_STATIC);
  sqlite3_bind_int64 (w->emb, 5, w->run_id);
  if (!cxr__store_step_done (w->store, w->emb, "storing a prediction", error))
    return FALSE;
  gsize hw = (gsize) p->map_w * p->map_h;
  for (int c = 0; c < p->n_classes; c++)
    {
      const char *finding = cxr_model_class_name (w->model, c);
      sqlite3_bind_int64 (w->pred, 1, scan_id);
      sqlite3_bind_int64 (w->pred, 2, w->model_id);
      sqlite3_bind_text (w->pred, 3, finding, -1, SQLITE_STATIC);
      sqlite3_bind_double (w->pred, 4, p->probability[c]);
      if (!cxr__store_step_done (w->store, w->pred, "storing a prediction", error))
        return FALSE;
      sqlite3_bind_int64 (w->heat, 1, scan_id);
      sqlite3_bind_int64 (w->heat, 2, w->model_id);
      sqlite3_bind_text (w->heat, 3, finding, -1, SQLITE_STATIC);
      sqlite3_bind_int (w->heat, 4, p->map_w);
      sqlite3_bind_int (w->heat, 5, p->map_h);
      sqlite3_bind_blob (w->heat, 6, p->cam + c * hw, (int) (hw * 4), SQLITE_STATIC);
      if (!cxr__store_step_done (w->store, w->heat, "storing a prediction", error))
        return FALSE;
    }
  return TRUE;
}

/**
 * cxr__analysis_write_severity:
 * A film's zone scores and global, by the writer's zone-score head.
 */
gboolean
cxr__analysis_write_severity (CxrAnalysisWriter *w, gint64 scan_id, const CxrSeverity *s,
                              GError **error)
{
  g_return_val_if_fail (w->sev != NULL, FALSE);
  sqlite3_bind_int64 (w->sev, 1, scan_id);
  sqlite3_bind_int64 (w->sev, 2, w->severity_id);
  sqlite3_bind_double (w->sev, 3, s->global);
  sqlite3_bind_text (w->sev, 4, cxr_severity_status_name (s->status), -1, SQLITE_STATIC);
  cxr__bind_text_or_null (w->sev, 5, s->reason);
  sqlite3_bind_text (w->sev, 6, s->method, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (w->sev, 7, w->run_id);
  if (!cxr__store_step_done (w->store, w->sev, "storing a severity", error))
    return FALSE;
  for (int z = 0; z < CXR_SEVERITY_ZONES; z++)
    {
      sqlite3_bind_int64 (w->zsc, 1, scan_id);
      sqlite3_bind_int64 (w->zsc, 2, w->severity_id);
      sqlite3_bind_text (w->zsc, 3, cxr_severity_zone_name (z), -1, SQLITE_STATIC);
      sqlite3_bind_double (w->zsc, 4, s->score[z]);
      sqlite3_bind_int (w->zsc, 5, s->y0[z]);
      sqlite3_bind_int (w->zsc, 6, s->y1[z]);
      sqlite3_bind_double (w->zsc, 7, s->area_px[z]);
      if (!cxr__store_step_done (w->store, w->zsc, "storing a zone score", error))
        return FALSE;
    }
  return TRUE;
}

/**
 * cxr__analysis_write_change:
 * A pair's change measures of @kind, with the artifact paths (relative
 * to the store's folder, or NULL) and the scale of the map written
 * (cxr_diff_write_map), and per finding the model's deltas.
 */
gboolean
cxr__analysis_write_change (CxrAnalysisWriter *w, gint64 fixed_id, gint64 moving_id,
                            const char *kind, const CxrDiff *d, const char *overlay_path,
                            const char *map_path, double map_scale, const char *method,
                            GError **error)
{
  g_return_val_if_fail (w->chg != NULL, FALSE);
  sqlite3_stmt *st = w->chg;
  int i = 1;
  sqlite3_bind_int64 (st, i++, fixed_id);
  sqlite3_bind_int64 (st, i++, moving_id);
  sqlite3_bind_text (st, i++, kind, -1, SQLITE_STATIC);
  double v[] = { d->change_score, d->change_energy,  d->changed_area_px,    d->changed_area_mm2,
                 d->peak_x_px,    d->peak_y_px,      d->peak_value,         d->threshold,
                 d->noise_sigma,  d->mask_area_px,   d->embedding_distance, d->feature_change,
                 d->trend_score,  d->trend_threshold };
  for (guint q = 0; q < G_N_ELEMENTS (v); q++, i++)
    cxr__bind_double_or_null (st, i, v[q]);
  if (w->model)
    sqlite3_bind_int64 (st, i, w->model_id);
  i++;
  cxr__bind_text_or_null (st, i++, overlay_path);
  cxr__bind_text_or_null (st, i++, map_path);
  sqlite3_bind_double (st, i++, d->elapsed_ms);
  sqlite3_bind_text (st, i++, method, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, i++, w->run_id);
  cxr__bind_text_or_null (st, i++, d->mask_kind);
  cxr__bind_double_or_null (st, i++, map_path ? map_scale : NAN);
  if (!cxr__store_step_done (w->store, st, "storing a difference map", error))
    return FALSE;
  for (int r = 0; r < CXR_DIFF_N_REGIONS; r++)
    {
      if (!(d->region_area_px[r] > 0))
        continue;
      sqlite3_bind_int64 (w->zone, 1, fixed_id);
      sqlite3_bind_int64 (w->zone, 2, moving_id);
      sqlite3_bind_text (w->zone, 3, kind, -1, SQLITE_STATIC);
      sqlite3_bind_text (w->zone, 4, cxr_diff_region_name (r), -1, SQLITE_STATIC);
      sqlite3_bind_double (w->zone, 5, d->region_area_px[r]);
      sqlite3_bind_double (w->zone, 6, d->region_score[r]);
      sqlite3_bind_double (w->zone, 7, d->region_mean_d[r]);
      if (!cxr__store_step_done (w->store, w->zone, "storing a difference map's zones", error))
        return FALSE;
    }
  for (int f = 0; f < d->n_classes; f++)
    {
      sqlite3_bind_int64 (w->fchg, 1, fixed_id);
      sqlite3_bind_int64 (w->fchg, 2, moving_id);
      sqlite3_bind_text (w->fchg, 3, kind, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (w->fchg, 4, w->model_id);
      sqlite3_bind_text (w->fchg, 5, cxr_model_class_name (w->model, f), -1, SQLITE_STATIC);
      sqlite3_bind_double (w->fchg, 6, d->probability_delta[f]);
      sqlite3_bind_double (w->fchg, 7, d->heatmap_delta_max[f]);
      if (!cxr__store_step_done (w->store, w->fchg, "storing a difference map", error))
        return FALSE;
    }
  return TRUE;
}

/**
 * cxr__analysis_write_lungs:
 * A film's lung fields, found by the writer's lung model.
 */
gboolean
cxr__analysis_write_lungs (CxrAnalysisWriter *w, gint64 scan_id, const CxrLungRow *row,
                           GError **error)
{
  g_return_val_if_fail (w->lungs != NULL, FALSE);
  const CxrLungFields *l = row->lungs;
  sqlite3_stmt *st = w->lungs;
  int i = 1;
  sqlite3_bind_int64 (st, i++, scan_id);
  sqlite3_bind_int64 (st, i++, w->lung_model_id);
  sqlite3_bind_double (st, i++, l->right_area_px);
  sqlite3_bind_double (st, i++, l->left_area_px);
  cxr__bind_double_or_null (st, i++, row->right_area_mm2);
  cxr__bind_double_or_null (st, i++, row->left_area_mm2);
  sqlite3_bind_double (st, i++, l->lung_fraction);
  gboolean box = l->bbox_x1 >= 0;
  int b[4] = { l->bbox_x0, l->bbox_y0, l->bbox_x1, l->bbox_y1 };
  for (int k = 0; k < 4; k++, i++)
    if (box)
      sqlite3_bind_int (st, i, b[k]);
  sqlite3_bind_double (st, i++, l->quality);
  sqlite3_bind_text (st, i++, cxr_lungs_status_name (l->status), -1, SQLITE_STATIC);
  cxr__bind_text_or_null (st, i++, l->reason);
  cxr__bind_text_or_null (st, i++, row->mask_path);
  sqlite3_bind_double (st, i++, l->elapsed_ms);
  sqlite3_bind_int64 (st, i++, w->run_id);
  cxr__bind_text_or_null (st, i++, l->airless_side);
  cxr__bind_double_or_null (st, i++, l->cardiothoracic_ratio);
  return cxr__store_step_done (w->store, st, "storing lung fields", error);
}
