/* SPDX-License-Identifier: MIT
 *
 * Test-retest limits, derived rather than guessed: films from the store,
 * re-posed and re-exposed copies of each (rotation +-5 degrees, shift
 * +-20 px, scale +-5 %, gain and gamma +-10 %), and per signal the 95th
 * percentile of |signal(copy) - signal(film)|. For the trend score the
 * copy is registered and compared with the film like any visit. A signal
 * that the copies do not move at all would get a limit of 0; each has a
 * floor at its resolution instead (signal.c).
 *
 * This is a small pipeline of its own (warp, predict, register, diff),
 * which is why it lives apart from the flags it serves (progression.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "cxr/diff.h"
#include "cxr/error.h"
#include "cxr/lungs.h"
#include "cxr/progression.h"
#include "cxr/register.h"
#include "cxr/signal.h"
#include "progression-private.h"
#include "signal-private.h"
#include "store-private.h"
#include "util-private.h"

#define CALIB_METHOD                                                                               \
  "reposed-copies/2 (+-5 deg, +-20 px, +-5 % scale, +-10 % gain and gamma; p95, floored)"

static double
p95 (GArray *v)
{
  return cxr__quantile ((double *) (void *) v->data, v->len, 0.95);
}

/* A re-posed, re-exposed copy of @film. */
static CxrImage *
repose (const CxrImage *film, GRand *rng)
{
  double px = MAX (film->width, film->height) / 1024.0;
  CxrRegistration pose = { 0 };
  pose.scale = g_rand_double_range (rng, 0.95, 1.05);
  pose.angle_deg = g_rand_double_range (rng, -5, 5);
  pose.dx_px = g_rand_double_range (rng, -20, 20) * px;
  pose.dy_px = g_rand_double_range (rng, -20, 20) * px;
  CxrImage *copy = cxr_register_warp (film, &pose, film->width, film->height);
  double gain = g_rand_double_range (rng, 0.9, 1.1), gamma = g_rand_double_range (rng, 0.9, 1.1);
  for (gsize i = 0; i < (gsize) copy->width * copy->height; i++)
    copy->data[i] = (float) CLAMP (gain * pow (CLAMP (copy->data[i], 0.f, 1.f), gamma), 0.0, 1.0);
  return copy;
}

/* |signal(copy) - signal(film)| of every signal (@signals' order) over
 * @copies copies of film @f, appended to @diffs. */
static void
measure_film (const CxrFilmRow *f, const CxrImageLimits *limits, const CxrModel *model,
              const CxrLungModel *lung_model, const CxrSeverityModel *severity,
              const GPtrArray *signals, int copies, CxrDiffRegion region, GRand *rng,
              GArray **diffs, FILE *samples)
{
  /* a film changed since ingest (or unreadable) is not used */
  g_autoptr (CxrImage) film = cxr_image_load_checked (f->path, f->sha256, limits, NULL, NULL);
  if (film == NULL)
    return;
  g_autoptr (CxrPrediction) pf = cxr_model_predict (model, film);
  g_autoptr (CxrLungFields) lf = lung_model ? cxr_lungs_segment (lung_model, film, NULL) : NULL;
  g_autoptr (CxrSeverity) sf
      = severity ? cxr_severity_measure (severity, film, lf, pf, NULL) : NULL;
  for (int k = 0; k < copies; k++)
    {
      g_autoptr (CxrImage) copy = repose (film, rng);
      g_autoptr (CxrPrediction) pc = cxr_model_predict (model, copy);
      g_autoptr (CxrLungFields) lc = lf ? cxr_lungs_segment (lung_model, copy, NULL) : NULL;
      g_autoptr (CxrSeverity) sc = sf ? cxr_severity_measure (severity, copy, lc, pc, NULL) : NULL;
      CxrRetest rt = {
        .model = model,
        .film = film,
        .copy = copy,
        .pf = pf,
        .pc = pc,
        .lf = lf,
        .lc = lc,
        .lungs_ok = lf && lc && lf->status == CXR_LUNGS_OK && lc->status == CXR_LUNGS_OK,
        .sf = sf,
        .sc = sc,
        .map_region = region,
      };
      for (guint s = 0; s < signals->len; s++)
        {
          const CxrSignal *sig = signals->pdata[s];
          double v = sig->klass->retest (sig, &rt);
          /* undefined (a zero embedding) or not compared: no sample */
          if (!isnan (v))
            g_array_append_val (diffs[s], v);
          if (!isnan (v) && samples)
            fprintf (samples, "%s,%s,%.9g\n", f->sha256, sig->name, v);
        }
      cxr__retest_clear (&rt);
    }
}

#define REFERENCE_MAX_BYTES (1 << 20)

void
cxr__reference_clear (CxrReference *r)
{
  g_free (r->classifier);
  if (r->rows)
    g_hash_table_unref (r->rows);
  memset (r, 0, sizeof *r);
}

static gboolean
reference_fail (GError **error, const char *path, int line, const char *what)
{
  g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "%s:%d: %s", path, line, what);
  return FALSE;
}

/* A column of a reference row: a positive number, or (@empty_ok) empty
 * for none (NAN). */
static gboolean
reference_number (const char *s, gboolean empty_ok, double *v)
{
  if (*s == '\0')
    {
      *v = NAN;
      return empty_ok;
    }
  return cxr__parse_double (s, v) && isfinite (*v) && *v > 0;
}

/**
 * cxr__reference_load:
 * cxrtrack's reference limits (tools/reference_limits.py): '#' lines that
 * name the classifier (classifier_sha256), the films and the minimum films
 * a store needs for its own limits (min_films), then the CSV
 * signal,limit_value,n_copies,visit_limit,visit_pairs (the last two empty
 * where the reference cohort had too few pairs). FALSE with @error naming
 * the file and line.
 */
gboolean
cxr__reference_load (const char *path, CxrReference *r, GError **error)
{
  memset (r, 0, sizeof *r);
  g_autofree char *text = NULL;
  gsize len;
  GStatBuf st;
  if (g_stat (path, &st) == 0 && st.st_size > REFERENCE_MAX_BYTES)
    return reference_fail (error, path, 0, "larger than 1 MiB: not a reference limits file");
  if (!g_file_get_contents (path, &text, &len, error))
    return FALSE;
  r->rows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  gboolean header = FALSE;
  for (int i = 0; lines[i]; i++)
    {
      char *l = g_strstrip (lines[i]);
      int no = i + 1;
      if (*l == '\0')
        continue;
      if (*l == '#')
        {
          char *v;
          if ((v = strstr (l, "classifier_sha256:")))
            {
              g_free (r->classifier);
              r->classifier = g_strstrip (g_ascii_strdown (v + 18, -1));
            }
          else if ((v = strstr (l, "min_films:")) && sscanf (v + 10, "%d", &r->min_films) != 1)
            return reference_fail (error, path, no, "min_films is not a number");
          else if ((v = strstr (l, "films:")) && v == l + 2 && sscanf (v + 6, "%d", &r->films) != 1)
            return reference_fail (error, path, no, "films is not a number");
          continue;
        }
      if (!header)
        {
          if (!g_str_equal (l, "signal,limit_value,n_copies,visit_limit,visit_pairs"))
            return reference_fail (
                error, path, no,
                "wanted the header signal,limit_value,n_copies,visit_limit,visit_pairs");
          header = TRUE;
          continue;
        }
      g_auto (GStrv) f = g_strsplit (l, ",", -1);
      double v, copies, visit, pairs;
      if (g_strv_length (f) != 5 || !*f[0] || strlen (f[0]) > 100
          || !reference_number (f[1], FALSE, &v) || !reference_number (f[2], FALSE, &copies)
          || copies > G_MAXINT || !reference_number (f[3], TRUE, &visit)
          || !reference_number (f[4], TRUE, &pairs) || pairs > G_MAXINT)
        return reference_fail (error, path, no,
                               "wanted signal,limit_value,n_copies,visit_limit,visit_pairs with"
                               " positive numbers (the last two may be empty)");
      CxrReferenceRow *row = g_new0 (CxrReferenceRow, 1);
      char *key = g_strdup (f[0]);
      row->row.signal = key;
      row->row.value = v;
      row->row.n_copies = (int) copies;
      row->visit_limit = visit;
      row->visit_pairs = isnan (pairs) ? 0 : (int) pairs;
      g_hash_table_replace (r->rows, key, row);
    }
  if (r->classifier == NULL || strlen (r->classifier) != 64 || r->min_films < 2 || r->films < 1
      || g_hash_table_size (r->rows) == 0)
    return reference_fail (error, path, 0,
                           "needs '# classifier_sha256:', '# films:', '# min_films:' (2 or"
                           " more) and rows");
  return TRUE;
}

/**
 * cxr_progression_check_reference:
 * Whether @path is a readable reference limits file (see
 * cxr__reference_load); commands check it before a run, not after.
 */
gboolean
cxr_progression_check_reference (const char *path, GError **error)
{
  CxrReference r;
  gboolean ok = cxr__reference_load (path, &r, error);
  cxr__reference_clear (&r);
  return ok;
}

/* The reference of @o for @model: TRUE with @r filled where there is one
 * for this classifier; FALSE with @error set only when the file is
 * broken (no file, or another classifier's: TRUE, @r->rows NULL). */
gboolean
cxr__reference_for (const CxrProgressionOptions *o, const CxrModel *model, CxrReference *r,
                    GError **error)
{
  memset (r, 0, sizeof *r);
  if (o->reference_limits == NULL || !g_file_test (o->reference_limits, G_FILE_TEST_EXISTS))
    return TRUE;
  if (!cxr__reference_load (o->reference_limits, r, error))
    {
      cxr__reference_clear (r);
      return FALSE;
    }
  if (!g_str_equal (r->classifier, cxr_model_sha256 (model)))
    cxr__reference_clear (r);
  return TRUE;
}

/**
 * cxr_progression_calibrate:
 * Derives and stores the test-retest limits of @model_id that the store
 * does not have yet (see the top of this file); with @lung_model
 * (nullable) also those of the lungs' areas, with @severity (nullable)
 * those of the Brixia scores. Needs at least one film.
 *
 * With @o->reference_limits (the classifier's reference limits), a store
 * with fewer films of its own than the reference's min_films takes the
 * reference limits instead, marked so in their method (and in every flag's
 * evidence); once it has enough films, they are derived from its own.
 */
gboolean
cxr_progression_calibrate (CxrStore *store, const CxrModel *model, const CxrLungModel *lung_model,
                           const CxrSeverityModel *severity, gint64 model_id,
                           const CxrProgressionOptions *o, GError **error)
{
  g_autoptr (GHashTable) have = cxr__store_limits (store, model_id, error);
  if (have == NULL)
    return FALSE;
  /* the reference, where it is the classifier's */
  CxrReference ref;
  if (!cxr__reference_for (o, model, &ref, error))
    return FALSE;
  gboolean have_ref = ref.rows != NULL;
  int min_films = have_ref ? ref.min_films : 1;
  /* enough films of its own: counted up to min_films, measured on
   * calib_films of them */
  g_autoptr (GArray) films
      = cxr__store_calibration_films (store, MAX (o->calib_films, min_films), error);
  if (films == NULL)
    {
      cxr__reference_clear (&ref);
      return FALSE;
    }
  gboolean use_ref = have_ref && (int) films->len < min_films;
  guint n_own = films->len;
  if (films->len > (guint) o->calib_films)
    g_array_set_size (films, o->calib_films);
  /* enough films now: reference limits give way to the store's own */
  gboolean had_ref = FALSE;
  GHashTableIter it;
  gpointer key, val;
  g_hash_table_iter_init (&it, have);
  while (g_hash_table_iter_next (&it, &key, &val))
    had_ref = had_ref || ((CxrLimit *) val)->reference;
  if (!use_ref && had_ref)
    {
      if (!cxr__store_delete_limits (store, model_id, error))
        {
          cxr__reference_clear (&ref);
          return FALSE;
        }
      g_hash_table_remove_all (have);
    }
  /* only the limits the store lacks and can have (the lungs' with a lung
   * model): a store calibrated before keeps its limits */
  g_autoptr (GPtrArray) signals = cxr_signals_for_model (model);
  gboolean needed = FALSE;
  for (guint s = 0; s < signals->len; s++)
    {
      const CxrSignal *sig = signals->pdata[s];
      needed = needed
               || (!g_hash_table_contains (have, sig->name)
                   && cxr__signal_measurable (sig, lung_model != NULL, severity != NULL));
    }
  if (!needed || use_ref)
    {
      gboolean ok = TRUE;
      if (needed)
        {
          g_autofree CxrLimitRow *rows = g_new0 (CxrLimitRow, signals->len);
          guint n = 0;
          for (guint s = 0; s < signals->len; s++)
            {
              const CxrSignal *sig = signals->pdata[s];
              const CxrReferenceRow *r = g_hash_table_lookup (ref.rows, sig->name);
              if (r == NULL || g_hash_table_contains (have, sig->name)
                  || !cxr__signal_measurable (sig, lung_model != NULL, severity != NULL))
                continue;
              rows[n++] = r->row;
            }
          g_autofree char *method = g_strdup_printf (
              "reference: cxrtrack's limits from %d films of other patients (%s); this store had"
              " %u of its own, fewer than %d",
              ref.films, CALIB_METHOD, n_own, min_films);
          ok = cxr__store_write_limits (store, model_id, rows, n, method, error);
        }
      cxr__reference_clear (&ref);
      return ok;
    }
  cxr__reference_clear (&ref);
  CxrImageLimits limits = CXR_IMAGE_LIMITS_DEFAULT;
  if (!cxr_store_dicom_voi (store, &limits.voi, NULL, error))
    return FALSE;
  guint ns = signals->len;
  g_autofree GArray **diffs = g_new (GArray *, ns);
  for (guint s = 0; s < ns; s++)
    diffs[s] = g_array_new (FALSE, FALSE, sizeof (double));
  FILE *samples = NULL;
  if (o->samples_path && (samples = g_fopen (o->samples_path, "w")) == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: %s", o->samples_path, g_strerror (errno));
      for (guint s = 0; s < ns; s++)
        g_array_unref (diffs[s]);
      return FALSE;
    }
  if (samples)
    fputs ("film_sha256,signal,value\n", samples);
  GRand *rng = g_rand_new_with_seed (2017);
  for (guint f = 0; f < films->len; f++)
    measure_film (&g_array_index (films, CxrFilmRow, f), &limits, model, lung_model, severity,
                  signals, o->calib_copies, o->map_region, rng, diffs, samples);
  g_rand_free (rng);
  if (samples && fclose (samples) != 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: %s", o->samples_path, g_strerror (errno));
      for (guint s = 0; s < ns; s++)
        g_array_unref (diffs[s]);
      return FALSE;
    }

  /* the embedding distance (the first signal) is measured on every copy
   * of a readable film with a non-zero embedding */
  gboolean ok = diffs[0]->len > 0;
  if (!ok)
    g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                 "no readable frontal film to derive test-retest limits from");
  g_autofree CxrLimitRow *rows = g_new0 (CxrLimitRow, ns);
  guint n = 0;
  for (guint s = 0; ok && s < ns; s++)
    {
      const CxrSignal *sig = signals->pdata[s];
      if (diffs[s]->len == 0 || g_hash_table_contains (have, sig->name))
        continue;
      rows[n].signal = sig->name;
      rows[n].value = MAX (p95 (diffs[s]), sig->limit_floor);
      rows[n].n_copies = (int) diffs[s]->len;
      n++;
    }
  if (ok)
    ok = cxr__store_write_limits (store, model_id, rows, n, CALIB_METHOD, error);
  for (guint s = 0; s < ns; s++)
    g_array_unref (diffs[s]);
  return ok;
}
