/* SPDX-License-Identifier: MIT
 *
 * cxrtrack push: what analyze found, back into the PACS the films came
 * from, where the radiologist reads them.
 *
 * For every film compared with a prior (a 'previous' pair of the
 * patient's report data, report.c: loaded once, rendered here a third
 * time) whose file is DICOM, its results go into the film's own study,
 * an SR series and a Secondary Capture series:
 *
 *   - a Comprehensive SR (dicom-out.cc) with a measurement group per
 *     comparison (since the prior; since the baseline when that is another
 *     film): registration status and confidence, change score, changed
 *     area, the map's noise threshold, days between the films, the Brixia
 *     score's change and the probability that moved most beyond its limit;
 *     a group for the film's own Brixia zones; and the progression flags
 *     whose visits include the film, each with its limits and evidence.
 *     Every measurement is INFERRED FROM the films it was read from;
 *   - a Secondary Capture of the change overlay on the prior, as the
 *     report draws it (cxr_diff_render_overlay), and one of the summary
 *     figure: the prior, the later film aligned to it, and the overlay,
 *     side by side.
 *
 * Codes: DCM and SCT where they exist; the rest in the private scheme
 * 99CXR, listed in the table below and in docs/pacs.md.
 *
 * UIDs are derived (the 2.25 form of a UUID made from SHA-256): a series
 * from the film and the model, an SR from the film and its content, an SC
 * from the film, the prior's content and the map it is drawn from. The
 * study's instances are listed first (QIDO-RS) and an object the PACS
 * already holds is neither drawn nor sent, so a second push sends nothing, and a push
 * after a new analysis adds the new results beside the old ones without
 * replacing them.
 */
#include <math.h>
#include <string.h>

#include "cxr-config.h"
#include "cxr/diff.h"
#include "cxr/error.h"
#include "cxr/image.h"
#include "cxr/pacs.h"
#include "cxr/severity.h"
#include "cxr/trend.h"
#include "dicom-private.h"
#include "dicomweb-private.h"
#include "pacs-private.h"
#include "report-private.h"
#include "util-private.h"

#define MAX_MESSAGES 50

/* The private codes (coding scheme 99CXR), one row per concept. */
enum {
  C_REG_STATUS,
  C_REG_CONFIDENCE,
  C_CHANGE_SCORE,
  C_CHANGED_AREA,
  C_THRESHOLD,
  C_DAYS,
  C_BRIXIA_ZONE,
  C_BRIXIA_GLOBAL,
  C_BRIXIA_CHANGE,
  C_PROB_CHANGE,
  C_FLAG,
  C_SEVERITY_STATUS,
  N_CODES
};

static const CxrSrCode codes[N_CODES] = {
  [C_REG_STATUS] = { "CXR001", "99CXR", "Registration status" },
  [C_REG_CONFIDENCE] = { "CXR002", "99CXR", "Registration confidence" },
  [C_CHANGE_SCORE] = { "CXR003", "99CXR", "Change score" },
  [C_CHANGED_AREA] = { "CXR004", "99CXR", "Changed lung area" },
  [C_THRESHOLD] = { "CXR005", "99CXR", "Change map noise threshold" },
  [C_DAYS] = { "CXR006", "99CXR", "Interval between films" },
  [C_BRIXIA_ZONE] = { "CXR010", "99CXR", "Brixia zone score" },
  [C_BRIXIA_GLOBAL] = { "CXR011", "99CXR", "Brixia score" },
  [C_BRIXIA_CHANGE] = { "CXR012", "99CXR", "Brixia score change" },
  [C_PROB_CHANGE] = { "CXR020", "99CXR", "Largest finding probability change" },
  [C_FLAG] = { "CXR030", "99CXR", "Progression flag" },
  [C_SEVERITY_STATUS] = { "CXR013", "99CXR", "Brixia score status" },
};

/* The Brixia zones as finding sites (private: no SNOMED concept names
 * these six thirds of the lungs). */
static const CxrSrCode zone_sites[6] = {
  { "CXRZA", "99CXR", "Brixia zone A (right upper)" },
  { "CXRZB", "99CXR", "Brixia zone B (right middle)" },
  { "CXRZC", "99CXR", "Brixia zone C (right lower)" },
  { "CXRZD", "99CXR", "Brixia zone D (left upper)" },
  { "CXRZE", "99CXR", "Brixia zone E (left middle)" },
  { "CXRZF", "99CXR", "Brixia zone F (left lower)" },
};

static const CxrSrCode no_units = { "1", "UCUM", "no units" };
static const CxrSrCode unit_mm2 = { "mm2", "UCUM", "mm2" };
static const CxrSrCode unit_days = { "d", "UCUM", "days" };
static const CxrSrCode unit_score = { "{score}", "UCUM", "score" };
/* change_score: the grey-level change beyond the threshold (0 black, 1
 * white) summed over the prior's pixels (docs/maps.md) */
static const CxrSrCode unit_change
    = { "{grey-level.px2}", "UCUM", "grey level x pixels of the prior" };

void
cxr_push_summary_init (CxrPushSummary *s)
{
  memset (s, 0, sizeof *s);
  s->messages = g_ptr_array_new_with_free_func (g_free);
}

void
cxr_push_summary_clear (CxrPushSummary *s)
{
  if (s->messages)
    g_ptr_array_unref (s->messages);
  s->messages = NULL;
}

static void G_GNUC_PRINTF (2, 3) note (CxrPushSummary *s, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  cxr__messages_addv (s->messages, &s->n_messages, MAX_MESSAGES, fmt, ap);
  va_end (ap);
}

/**
 * cxr__uid_from_text:
 *
 * Returns: (transfer full): the UID "2.25.N", N the 128-bit UUID (RFC
 * 9562 version 8, its bits SHA-256 of @text) in decimal: the same text
 * gives the same UID on any machine.
 */
char *
cxr__uid_from_text (const char *text)
{
  guint8 d[32];
  gsize n = sizeof d;
  GChecksum *ck = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (ck, (const guchar *) text, -1);
  g_checksum_get_digest (ck, d, &n);
  g_checksum_free (ck);
  d[6] = (guint8) ((d[6] & 0x0f) | 0x80); /* version 8 */
  d[8] = (guint8) ((d[8] & 0x3f) | 0x80); /* variant 10 */
  unsigned __int128 v = 0;
  for (int i = 0; i < 16; i++)
    v = (v << 8) | d[i];
  char digits[48];
  int k = sizeof digits;
  digits[--k] = '\0';
  do
    {
      digits[--k] = (char) ('0' + (int) (v % 10));
      v /= 10;
    }
  while (v);
  return g_strconcat ("2.25.", digits + k, NULL);
}

/* --- the SR's content ---------------------------------------------------- */

static void
item_clear (gpointer p)
{
  CxrSrItem *it = p;
  g_free (it->text);
}

static void
group_free (gpointer p)
{
  CxrSrGroup *g = p;
  g_free (g->tracking_id);
  g_free (g->tracking_uid);
  g_array_unref (g->items);
  g_free (g);
}

static void
image_clear (gpointer p)
{
  CxrSrImage *im = p;
  g_free (im->sop_class_uid);
  g_free (im->sop_instance_uid);
}

static CxrSrGroup *
group_new (GPtrArray *groups, const char *id, const char *film_uid)
{
  CxrSrGroup *g = g_new0 (CxrSrGroup, 1);
  g->tracking_id = g_strdup (id);
  g_autofree char *seed = g_strdup_printf ("cxrtrack group %s %s", id, film_uid);
  g->tracking_uid = cxr__uid_from_text (seed);
  g->items = g_array_new (FALSE, TRUE, sizeof (CxrSrItem));
  g_array_set_clear_func (g->items, item_clear);
  g_ptr_array_add (groups, g);
  return g;
}

static void
add_num (CxrSrGroup *g, int code, double v, const CxrSrCode *unit, int ref0, int ref1,
         const CxrSrCode *site)
{
  if (isnan (v))
    return;
  CxrSrItem it = { .kind = CXR_SR_NUM, .concept = codes[code], .value = v, .unit = *unit };
  it.refs[0] = ref0;
  it.refs[1] = ref1;
  if (site)
    it.site = *site;
  g_array_append_val (g->items, it);
}

static void
add_text (CxrSrGroup *g, int code, char *text, int ref0, int ref1)
{
  CxrSrItem it = { .kind = CXR_SR_TEXT, .concept = codes[code], .text = text };
  it.refs[0] = ref0;
  it.refs[1] = ref1;
  g_array_append_val (g->items, it);
}

/* @f added to the document's images from its header @m, or -1 when the
 * header is not @f's (then it cannot be referenced). */
static int
image_add (GArray *images, const CxrReportFilm *f, const CxrDicomMeta *m)
{
  if (m->sop_class_uid == NULL || g_strcmp0 (m->sop_instance_uid, f->image_index) != 0)
    return -1;
  CxrSrImage im = { g_strdup (m->sop_class_uid), g_strdup (m->sop_instance_uid) };
  g_array_append_val (images, im);
  return (int) images->len - 1;
}

/* The index of @f in the document's images, its header read and @f
 * added if new, or -1 when its file is not a DICOM film. */
static int
image_ref (GArray *images, const CxrReportFilm *f, const CxrImageLimits *limits)
{
  for (guint i = 0; i < images->len; i++)
    if (g_str_equal (g_array_index (images, CxrSrImage, i).sop_instance_uid, f->image_index))
      return (int) i;
  CxrDicomMeta m;
  if (f->path == NULL || !cxr__dicom_read_header (f->path, limits->max_file_bytes, &m, NULL))
    return -1;
  int k = image_add (images, f, &m);
  cxr__dicom_meta_clear (&m);
  return k;
}

static double
brixia_delta (const CxrReportFilm *f, const CxrReportFilm *m)
{
  if (f->severity_status == NULL || m->severity_status == NULL)
    return NAN;
  return m->severity_global - f->severity_global;
}

/* A comparison's measurement group: @m against @f. */
static void
comparison_group (GPtrArray *groups, const char *id, const CxrReportData *d, const CxrReportPair *p,
                  const CxrReportFilm *f, const CxrReportFilm *m, int rm, int rf)
{
  CxrSrGroup *g = group_new (groups, id, m->image_index);
  add_text (g, C_REG_STATUS,
            p->reason && *p->reason ? g_strdup_printf ("%s (%s)", p->status, p->reason)
                                    : g_strdup (p->status),
            rm, rf);
  add_num (g, C_REG_CONFIDENCE, p->confidence, &no_units, rm, rf, NULL);
  add_num (g, C_CHANGE_SCORE, p->change_score, &unit_change, rm, rf, NULL);
  add_num (g, C_CHANGED_AREA, p->changed_area_mm2, &unit_mm2, rm, rf, NULL);
  add_num (g, C_THRESHOLD, p->threshold, &no_units, rm, rf, NULL);
  add_num (g, C_DAYS, m->day - f->day, &unit_days, rm, rf, NULL);
  add_num (g, C_BRIXIA_CHANGE, brixia_delta (f, m), &unit_score, rm, rf, NULL);
  if (p->prob_finding && !isnan (p->prob_delta))
    add_text (g, C_PROB_CHANGE,
              g_strdup_printf ("%s %+.3f (%.1f times its limit; model %s)", p->prob_finding,
                               p->prob_delta, p->prob_change_limits, d->model_name),
              rm, rf);
}

/* The film's own Brixia zones. */
static void
severity_group (GPtrArray *groups, const CxrReportFilm *m, int rm)
{
  if (m->severity_status == NULL)
    return;
  CxrSrGroup *g = group_new (groups, "Brixia score at this film", m->image_index);
  for (int z = 0; z < 6; z++)
    add_num (g, C_BRIXIA_ZONE, m->zone_score[z], &unit_score, rm, -1, &zone_sites[z]);
  add_num (g, C_BRIXIA_GLOBAL, m->severity_global, &unit_score, rm, -1, NULL);
  add_text (g, C_SEVERITY_STATUS, g_strdup (m->severity_status), rm, -1);
}

/* The flags whose visits include @m's, each as a line with its limits. */
static void
flags_group (GPtrArray *groups, const CxrReportData *d, const CxrReportFilm *m, int rm)
{
  CxrSrGroup *g = NULL;
  for (guint i = 0; i < d->flags->len; i++)
    {
      const CxrFlagRow *fl = &g_array_index (d->flags, CxrFlagRow, i);
      if (m->visit < fl->first_visit || m->visit > fl->last_visit
          || g_strcmp0 (fl->view_kind, m->view_kind) != 0)
        continue;
      if (g == NULL)
        g = group_new (groups, "Progression flags", m->image_index);
      g_autofree char *label = cxr__report_signal_label (fl->signal);
      add_text (g, C_FLAG,
                g_strdup_printf ("%s: %s, visits %d to %d; retest limit %.4g, acute limit %.4g "
                                 "(%s); %s",
                                 cxr_trend_kind_name (fl->kind), label, fl->first_visit,
                                 fl->last_visit, fl->retest_limit, fl->acute_limit,
                                 fl->limit_source, fl->evidence ? fl->evidence : ""),
                rm, -1);
    }
}

/* A digest of the SR's content, for its instance UID. */
static char *
content_digest (const CxrSrDoc *doc)
{
  g_autoptr (GString) s = g_string_new (doc->algorithm);
  for (guint i = 0; i < doc->images->len; i++)
    g_string_append_printf (s, "|%s", g_array_index (doc->images, CxrSrImage, i).sop_instance_uid);
  for (guint k = 0; k < doc->groups->len; k++)
    {
      const CxrSrGroup *g = doc->groups->pdata[k];
      g_string_append_printf (s, "|%s", g->tracking_id);
      for (guint i = 0; i < g->items->len; i++)
        {
          const CxrSrItem *it = &g_array_index (g->items, CxrSrItem, i);
          g_string_append_printf (s, "|%s=%.6g:%s:%s", it->concept.value, it->value,
                                  it->text ? it->text : "", it->site.value ? it->site.value : "");
        }
    }
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, s->str, -1);
}

/* --- one film ------------------------------------------------------------ */

typedef struct {
  CxrDicomweb *client;
  const CxrPushOptions *opt;
  CxrPushSummary *sum;
  char date[9], time[7]; /* of this push, for the objects' content date */
} Push;

/* The map of pair @p (its bytes, from the store's artifacts), or NULL
 * with why not. */
static GBytes *
pair_map (const CxrReportData *d, const CxrReportPair *p, GError **error)
{
  if (p->overlay_path == NULL || p->overlay_missing || isnan (p->map_scale))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "no difference map%s%s",
                   p->overlay_missing ? ": missing from the store's artifacts, " : "",
                   p->overlay_missing ? p->overlay_path : "");
      return NULL;
    }
  return cxr__report_artifact (d, p->overlay_path, error);
}

/* The overlay of pair @p (@map its map) on its earlier film @fim, as the
 * report draws it. */
static guint8 *
overlay (const CxrReportPair *p, GBytes *map_bytes, const CxrImage *fim, int *w, int *h,
         GError **error)
{
  g_autofree float *map
      = cxr_diff_decode_map (p->overlay_path, g_bytes_get_data (map_bytes, NULL),
                             g_bytes_get_size (map_bytes), p->map_scale, w, h, error);
  if (map == NULL)
    return NULL;
  return cxr_diff_render_overlay (fim, map, *w, *h, p->threshold, p->outline);
}

/* The comparison at a glance, @w x @h each, side by side: the prior
 * film, the later film aligned to it, and the overlay. */
static guint8 *
strip (const CxrReportPair *p, const CxrImage *fim, const CxrImage *mim, const guint8 *ov, int w,
       int h)
{
  CxrRegistration r = p->reg;
  r.status = CXR_REGISTER_OK;
  g_autoptr (CxrImage) warped = cxr_register_warp (mim, &r, fim->width, fim->height);
  g_autoptr (CxrImage) a = cxr_image_resize (fim, w, h);
  g_autoptr (CxrImage) b = cxr_image_resize (warped, w, h);
  guint8 *rgb = g_new (guint8, (gsize) 9 * w * h);
  for (int y = 0; y < h; y++)
    {
      guint8 *row = rgb + (gsize) 9 * w * y;
      for (int x = 0; x < w; x++)
        {
          guint8 ga = (guint8) (CLAMP (a->data[(gsize) y * w + x], 0.f, 1.f) * 255 + 0.5f);
          guint8 gb = (guint8) (CLAMP (b->data[(gsize) y * w + x], 0.f, 1.f) * 255 + 0.5f);
          memset (row + 3 * x, ga, 3);
          memset (row + 3 * (w + x), gb, 3);
        }
      memcpy (row + 6 * w, ov + (gsize) 3 * w * y, (gsize) 3 * w);
    }
  return rgb;
}

/* The SOP Instance UIDs @study holds in the PACS (a study it does not
 * hold yet may answer 404: none). */
static GHashTable *
study_instances (Push *ps, const char *study, GError **error)
{
  g_autofree char *path = g_strdup_printf ("studies/%s/instances", study);
  g_autoptr (GError) err = NULL;
  g_autoptr (GPtrArray) held = cxr__dicomweb_search (ps->client, path, NULL, 500, &err);
  if (held == NULL && cxr__dicomweb_last_status (ps->client) != 404)
    {
      g_propagate_error (error, g_steal_pointer (&err));
      return NULL;
    }
  GHashTable *uids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint k = 0; held && k < held->len; k++)
    {
      char *uid = cxr__dicom_json_string (held->pdata[k], "00080018");
      if (uid)
        g_hash_table_add (uids, uid);
    }
  return uids;
}

/* The SR and the SC of film @m, compared with @f by @p (its previous
 * pair) and with the baseline by @pb (or NULL). */
static gboolean
push_film (Push *ps, const CxrReportData *d, const CxrReportPair *p, const CxrReportFilm *f,
           const CxrReportFilm *m, const CxrReportPair *pb, const CxrReportFilm *b, GError **error)
{
  CxrDicomMeta meta;
  if (m->path == NULL || !cxr__dicom_read_header (m->path, d->limits.max_file_bytes, &meta, NULL))
    {
      ps->sum->n_not_dicom++;
      return TRUE;
    }
  g_autofree char *study = g_strdup (meta.study_instance_uid);
  /* the film's own header, read once: its study and its reference */
  g_autoptr (GArray) images = g_array_new (FALSE, TRUE, sizeof (CxrSrImage));
  g_array_set_clear_func (images, image_clear);
  int rm = image_add (images, m, &meta);
  cxr__dicom_meta_clear (&meta);
  if (!cxr__dicom_uid_ok (study))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: its Study Instance UID is not a UID: nothing to file into", m->path);
      return FALSE;
    }
  ps->sum->n_films++;

  g_autoptr (GPtrArray) groups = g_ptr_array_new_with_free_func (group_free);
  int rf = image_ref (images, f, &d->limits);
  comparison_group (groups, "Change since the prior film", d, p, f, m, rm, rf);
  if (pb && b)
    comparison_group (groups, "Change since the first film", d, pb, b, m, rm,
                      image_ref (images, b, &d->limits));
  severity_group (groups, m, rm);
  flags_group (groups, d, m, rm);

  g_autofree char *algorithm = g_strdup_printf ("cxrtrack %s, model %s (sha256 %.12s)", CXR_VERSION,
                                                d->model_name ? d->model_name : "none",
                                                d->model_sha256 ? d->model_sha256 : "-");
  g_autofree char *device_uid = cxr__uid_from_text ("cxrtrack device");
  g_autofree char *seed = g_strdup_printf ("cxrtrack sr series %s %s", m->image_index, algorithm);
  g_autofree char *sr_series = cxr__uid_from_text (seed);
  CxrSrDoc doc = { .object = { .source = m->path,
                               .series_uid = sr_series,
                               .series_number = 9901,
                               .series_description = "cxrtrack comparison (SR)",
                               .software_version = CXR_VERSION,
                               .content_date = ps->date,
                               .content_time = ps->time },
                   .device_uid = device_uid,
                   .algorithm = algorithm,
                   .images = images,
                   .groups = groups };
  g_autofree char *digest = content_digest (&doc);
  g_autofree char *seed2 = g_strdup_printf ("cxrtrack sr %s %s", m->image_index, digest);
  g_autofree char *sr_uid = cxr__uid_from_text (seed2);
  doc.object.instance_uid = sr_uid;

  /* the overlay's UIDs from what draws it: the prior film, the map and
   * how it is drawn, so what the PACS holds is known before drawing */
  g_autoptr (GError) why = NULL;
  g_autoptr (GBytes) map = pair_map (d, p, &why);
  g_autofree char *sc_uid = NULL, *sc_series = NULL, *strip_uid = NULL;
  if (map)
    {
      g_autofree char *map_sha = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, map);
      g_autofree char *s3 = g_strdup_printf ("cxrtrack sc series %s %s", m->image_index, algorithm);
      g_autofree char *s4
          = g_strdup_printf ("cxrtrack sc %s %s %s %.9g %.9g %d %s", m->image_index, f->sha256,
                             map_sha, p->map_scale, p->threshold, p->outline, CXR_VERSION);
      g_autofree char *s5 = g_strdup_printf ("%s strip %s", s4, m->sha256);
      sc_series = cxr__uid_from_text (s3);
      sc_uid = cxr__uid_from_text (s4);
      strip_uid = cxr__uid_from_text (s5);
    }
  else
    note (ps->sum, "%s: no change overlay sent: %s", m->image_index, why->message);

  g_autoptr (GHashTable) held = study_instances (ps, study, error);
  if (held == NULL)
    return FALSE;
  g_autoptr (GPtrArray) objects = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  if (g_hash_table_contains (held, sr_uid))
    ps->sum->n_present++;
  else
    {
      GBytes *sr = cxr__sr_encode (&doc, error);
      if (sr == NULL)
        return FALSE;
      g_ptr_array_add (objects, sr);
    }
  /* the overlay and the strip: only what the PACS lacks is drawn */
  gboolean want_sc = sc_uid && !g_hash_table_contains (held, sc_uid);
  gboolean want_strip = strip_uid && !g_hash_table_contains (held, strip_uid);
  ps->sum->n_present += (sc_uid && !want_sc) + (strip_uid && !want_strip);
  if (want_sc || want_strip)
    {
      g_autoptr (CxrImage) fim
          = cxr_image_load_checked (f->path, f->sha256, &d->limits, NULL, error);
      g_autoptr (CxrImage) mim
          = fim ? cxr_image_load_checked (m->path, m->sha256, &d->limits, NULL, error) : NULL;
      if (mim == NULL)
        return FALSE;
      int w = 0, h = 0;
      g_autofree guint8 *rgb = overlay (p, map, fim, &w, &h, error);
      if (rgb == NULL)
        return FALSE;
      CxrSrImage sources[2];
      guint n_sources = 0;
      if (rf >= 0)
        sources[n_sources++] = g_array_index (images, CxrSrImage, rf);
      if (rm >= 0)
        sources[n_sources++] = g_array_index (images, CxrSrImage, rm);
      CxrPushObject o = doc.object;
      o.series_uid = sc_series;
      o.series_number = 9902;
      o.series_description = "cxrtrack change overlay";
      g_autofree char *when = g_strdup (f->study_date ? f->study_date : "date unknown");
      if (want_sc)
        {
          o.instance_uid = sc_uid;
          o.instance_number = 1;
          g_autofree char *derivation = g_strdup_printf (
              "cxrtrack change since the prior film (%s), drawn on the prior: red brighter now, "
              "blue darker now, grey within the pair's noise (+-%.3f); a measure, not a diagnosis",
              when, p->threshold);
          GBytes *sc = cxr__sc_encode (&o, rgb, w, h, sources, n_sources, derivation, error);
          if (sc == NULL)
            return FALSE;
          g_ptr_array_add (objects, sc);
        }
      if (want_strip)
        {
          g_autofree guint8 *three = strip (p, fim, mim, rgb, w, h);
          o.instance_uid = strip_uid;
          o.instance_number = 2;
          g_autofree char *derivation = g_strdup_printf (
              "cxrtrack comparison, left to right: the prior film (%s), this film aligned to it, "
              "the change (red brighter now, blue darker now); a measure, not a diagnosis",
              when);
          GBytes *sc = cxr__sc_encode (&o, three, 3 * w, h, sources, n_sources, derivation, error);
          if (sc == NULL)
            return FALSE;
          g_ptr_array_add (objects, sc);
        }
    }
  if (objects->len == 0)
    return TRUE;
  if (!cxr__dicomweb_store (ps->client, study, objects, error))
    return FALSE;
  ps->sum->n_sent += objects->len;
  return TRUE;
}

/* The pair of @kind whose later film is @m, or NULL. */
static const CxrReportPair *
pair_of (const CxrReportData *d, const CxrReportFilm *m, const char *kind, const CxrReportFilm **f)
{
  for (guint i = 0; i < d->pairs->len; i++)
    {
      const CxrReportPair *p = &g_array_index (d->pairs, CxrReportPair, i);
      if (p->moving_id != m->scan_id || !g_str_equal (p->kind, kind))
        continue;
      for (guint k = 0; k < d->films->len; k++)
        {
          const CxrReportFilm *x = &g_array_index (d->films, CxrReportFilm, k);
          if (x->scan_id == p->fixed_id)
            {
              *f = x;
              return p;
            }
        }
    }
  return NULL;
}

static gboolean
push_patient (Push *ps, CxrStore *store, const char *pid, GError **error)
{
  g_autoptr (CxrReportData) d = cxr__report_data_load (store, pid, error);
  if (d == NULL)
    return FALSE;
  for (guint k = 0; k < d->films->len; k++)
    {
      const CxrReportFilm *m = &g_array_index (d->films, CxrReportFilm, k);
      const CxrReportFilm *f = NULL, *b = NULL;
      const CxrReportPair *p = pair_of (d, m, "previous", &f);
      if (p == NULL)
        continue;
      const CxrReportPair *pb = pair_of (d, m, "baseline", &b);
      if (pb && b == f)
        pb = NULL; /* the prior is the baseline: one comparison */
      g_autoptr (GError) err = NULL;
      if (!push_film (ps, d, p, f, m, pb, b, &err))
        {
          ps->sum->n_failed++;
          note (ps->sum, "patient %s, film %s: %s", pid, m->image_index, err->message);
          if (g_error_matches (err, CXR_ERROR, CXR_ERROR_DB))
            {
              g_propagate_error (error, g_steal_pointer (&err));
              return FALSE;
            }
        }
    }
  return TRUE;
}

/**
 * cxr_push:
 * @url: the PACS's DICOMweb root
 *
 * Sends, for each film of the chosen patients that has a prior and whose
 * file is DICOM, an SR of its comparisons and a Secondary Capture of its
 * change overlay into its study (what the PACS holds already is not sent).
 * A film whose objects cannot be made or sent is counted and noted in
 * @summary and the push goes on; %FALSE only when the store cannot be
 * read or the PACS cannot be reached at all.
 */
gboolean
cxr_push (CxrStore *store, const char *url, const CxrPushOptions *o, CxrPushSummary *sum,
          GError **error)
{
  g_return_val_if_fail (store != NULL && url != NULL && o != NULL && sum != NULL, FALSE);
  if (sum->messages == NULL)
    cxr_push_summary_init (sum);
  g_autoptr (CxrDicomweb) client
      = cxr__dicomweb_new (url, o->auth, o->ca_file, o->timeout_s, error);
  if (client == NULL)
    return FALSE;
  /* the PACS answers, or nothing is tried */
  g_autoptr (GPtrArray) probe = cxr__dicomweb_search (client, "studies", "limit=1", 0, error);
  if (probe == NULL)
    return FALSE;
  Push ps = { .client = client, .opt = o, .sum = sum };
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *date = g_date_time_format (now, "%Y%m%d");
  g_autofree char *time = g_date_time_format (now, "%H%M%S");
  g_strlcpy (ps.date, date, sizeof ps.date);
  g_strlcpy (ps.time, time, sizeof ps.time);

  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  if (o->patients && o->patients[0])
    for (const char *const *p = o->patients; *p; p++)
      g_ptr_array_add (ids, g_strdup (*p));
  else
    {
      g_autoptr (GArray) rows = cxr__store_index_rows (store, error);
      if (rows == NULL)
        return FALSE;
      for (guint i = 0; i < rows->len; i++)
        {
          const CxrIndexRow *r = &g_array_index (rows, CxrIndexRow, i);
          if (r->has_pairs && (!o->flagged || r->n_flags > 0)
              && cxr_shard_contains (&o->shard, r->patient_id))
            g_ptr_array_add (ids, g_strdup (r->patient_id));
        }
    }
  for (guint i = 0; i < ids->len; i++)
    if (!push_patient (&ps, store, ids->pdata[i], error))
      return FALSE;
  return TRUE;
}
