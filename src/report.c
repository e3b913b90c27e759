/* SPDX-License-Identifier: MIT
 *
 * Change reports: one self-contained HTML page per patient (images inline
 * as data: URIs, plots as inline SVG, no external assets, opens offline),
 * the same content as JSON, and a cohort index. Everything comes from the
 * store and the artifact files next to it; films are read again only to
 * make thumbnails and the registered views of each pair.
 *
 * Each page carries a few lines of script that record, once the page has
 * loaded, how many of its images decoded (body data-images-ok="n/m"); the
 * browser test reads it.
 */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "cxr-config.h"
#include "cxr/error.h"
#include "cxr/register.h"
#include "cxr/report.h"
#include "cxr/trend.h"

static const char css[] =
  "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}"
  "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}"
  "table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #e4e4e4;text-align:left}"
  "th{cursor:pointer;background:#eee}.strip{display:flex;flex-wrap:wrap;gap:8px}"
  "figure{margin:0;background:#fff;border:1px solid #ddd;padding:4px;font-size:12px}"
  "figure img{display:block}.badge{display:inline-block;padding:0 6px;border-radius:8px;"
  "font-size:11px;color:#fff;background:#777}.b-lateral,.b-invalid,.b-missing{background:#a33}"
  ".b-failed{background:#a33}.b-low_confidence{background:#b8860b}.b-ok{background:#2a7}"
  ".b-cross{background:#56a}.flag{padding:6px 10px;margin:6px 0;background:#fff;border-left:4px solid #c33}"
  ".flag.improving{border-color:#2a7}.pair{display:flex;gap:8px;align-items:flex-start;margin:10px 0;"
  "background:#fff;padding:6px;border:1px solid #ddd}.plots{display:flex;flex-wrap:wrap;gap:6px}"
  "svg{background:#fff;border:1px solid #ddd}.muted{color:#888}";

static const char self_check[] =
  "<script>window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);"
  "document.body.setAttribute('data-images-ok',i.filter(function(x){return x.naturalWidth>0}).length+'/'+i.length);});"
  "</script>";

static const char sorter[] =
  "<script>document.querySelectorAll('th').forEach(function(th,c){th.addEventListener('click',function(){"
  "var tb=th.closest('table').tBodies[0],r=Array.prototype.slice.call(tb.rows),d=th.dataset.dir=th.dataset.dir==='a'?'d':'a';"
  "r.sort(function(x,y){var a=x.cells[c].dataset.v||x.cells[c].textContent,b=y.cells[c].dataset.v||y.cells[c].textContent,"
  "na=parseFloat(a),nb=parseFloat(b),k=isNaN(na)||isNaN(nb)?a.localeCompare(b):na-nb;return d==='a'?k:-k;});"
  "r.forEach(function(x){tb.appendChild(x)});});});</script>";

static char *
esc (const char *s)
{
  return g_markup_escape_text (s ? s : "", -1);
}

static void
data_uri (GString *out, GBytes *png)
{
  g_autofree char *b64 = g_base64_encode (g_bytes_get_data (png, NULL), g_bytes_get_size (png));
  g_string_append_printf (out, "data:image/png;base64,%s", b64);
}

/* A film as an inline PNG thumbnail w px wide; FALSE if it cannot be read. */
static gboolean
thumb (GString *out, const CxrImage *im, int w)
{
  int h = MAX (1, (int) lround ((double) im->height * w / im->width));
  g_autoptr (CxrImage) r = cxr_image_resize (im, w, h);
  g_autofree guint8 *px = g_new (guint8, (gsize) w * h);
  for (gsize i = 0; i < (gsize) w * h; i++)
    px[i] = (guint8) (CLAMP (r->data[i], 0.f, 1.f) * 255 + 0.5f);
  g_autoptr (GBytes) png = cxr_image_encode_png8 (px, w, h, 1, 6, NULL);
  if (png == NULL)
    return FALSE;
  g_string_append (out, "<img alt=\"film\" width=\"");
  g_string_append_printf (out, "%d\" height=\"%d\" src=\"", w, h);
  data_uri (out, png);
  g_string_append (out, "\">");
  return TRUE;
}

typedef struct {
  gint64 scan_id;
  char *image_index, *view_kind, *view_position, *status, *error, *path, *labels, *sha256;
  int visit;
  double day, age;
} Film;

static void
film_clear (gpointer p)
{
  Film *f = p;
  g_free (f->image_index);
  g_free (f->view_kind);
  g_free (f->view_position);
  g_free (f->status);
  g_free (f->error);
  g_free (f->path);
  g_free (f->labels);
  g_free (f->sha256);
}

static const char *
col_text (sqlite3_stmt *st, int i)
{
  return (const char *) sqlite3_column_text (st, i);
}

static double
col_double (sqlite3_stmt *st, int i)
{
  return sqlite3_column_type (st, i) == SQLITE_NULL ? NAN : sqlite3_column_double (st, i);
}

static char *
resolve (const char *db_dir, const char *path)
{
  if (path == NULL)
    return NULL;
  return g_path_is_absolute (path) ? g_strdup (path) : g_build_filename (db_dir, path, NULL);
}

/* A small SVG line plot; the Theil-Sen line is drawn dashed. */
static void
svg_plot (GString *out, const char *title, const double *t, const double *y, int n,
          const char *axis, gboolean flagged, gboolean zero_based)
{
  const int W = 300, H = 150, L = 40, R = 10, T = 22, B = 24;
  double t0 = t[0], t1 = t[n - 1], y0 = zero_based ? 0 : y[0], y1 = y[0];
  for (int i = 0; i < n; i++)
    {
      y0 = MIN (y0, y[i]);
      y1 = MAX (y1, y[i]);
    }
  if (y1 - y0 < 1e-9)
    y1 = y0 + 1e-3;
  if (t1 <= t0)
    t1 = t0 + 1;
  const char *colour = flagged ? "#c33" : "#357";
  g_autofree char *et = esc (title);
  g_string_append_printf (out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">"
                          "<text x=\"%d\" y=\"15\" font-size=\"12\" fill=\"%s\">%s%s</text>",
                          W, H, L, colour, et, flagged ? " (flagged)" : "");
  g_string_append_printf (out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>"
                          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>",
                          L, H - B, W - R, H - B, L, T, L, H - B);
  g_string_append_printf (out, "<text x=\"2\" y=\"%d\" font-size=\"10\">%.3g</text>"
                          "<text x=\"2\" y=\"%d\" font-size=\"10\">%.3g</text>"
                          "<text x=\"%d\" y=\"%d\" font-size=\"10\">%s</text>",
                          T + 8, y1, H - B, y0, W - R - 40, H - 6, axis);
#define X(v) (L + ((v) - t0) / (t1 - t0) * (W - L - R))
#define Y(v) (H - B - ((v) - y0) / (y1 - y0) * (H - B - T))
  g_string_append (out, "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"");
  g_string_append_printf (out, "%s\" points=\"", colour);
  for (int i = 0; i < n; i++)
    g_string_append_printf (out, "%.1f,%.1f ", X (t[i]), Y (y[i]));
  g_string_append (out, "\"/>");
  for (int i = 0; i < n; i++)
    g_string_append_printf (out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", X (t[i]),
                            Y (y[i]), colour);
  CxrTheilSen ts;
  if (n >= 3 && cxr_trend_theil_sen (t, y, n, 0.95, &ts))
    g_string_append_printf (out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\""
                            " stroke-dasharray=\"4 3\"/>",
                            X (t0), Y (ts.intercept + ts.slope * t0), X (t1),
                            Y (ts.intercept + ts.slope * t1), colour);
#undef X
#undef Y
  g_string_append (out, "</svg>");
}

static GArray *
load_films (CxrStore *store, const char *pid, GError **error)
{
  sqlite3_stmt *st = cxr_store_prepare (store,
      "SELECT scan_id, image_index, view_kind, view_position, status, error, path, finding_labels,"
      " sha256, visit, coalesce(julianday(study_date), day_offset), age_years"
      " FROM scans WHERE patient_id = ? ORDER BY visit", error);
  if (st == NULL)
    return NULL;
  GArray *films = g_array_new (FALSE, TRUE, sizeof (Film));
  g_array_set_clear_func (films, film_clear);
  sqlite3_bind_text (st, 1, pid, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      Film f = { sqlite3_column_int64 (st, 0), g_strdup (col_text (st, 1)), g_strdup (col_text (st, 2)),
                 g_strdup (col_text (st, 3)), g_strdup (col_text (st, 4)), g_strdup (col_text (st, 5)),
                 g_strdup (col_text (st, 6)), g_strdup (col_text (st, 7)), g_strdup (col_text (st, 8)),
                 sqlite3_column_int (st, 9), col_double (st, 10), col_double (st, 11) };
      g_array_append_val (films, f);
    }
  sqlite3_finalize (st);
  return films;
}

static const Film *
film_by_id (GArray *films, gint64 id)
{
  for (guint i = 0; i < films->len; i++)
    if (g_array_index (films, Film, i).scan_id == id)
      return &g_array_index (films, Film, i);
  return NULL;
}

/* The latest model with results for this patient, or 0. */
static gint64
patient_model (CxrStore *store, const char *pid, char **name, char **sha)
{
  sqlite3_stmt *st = cxr_store_prepare (store,
      "SELECT m.model_id, m.name, m.sha256 FROM models m WHERE EXISTS (SELECT 1 FROM embeddings e"
      " JOIN scans s USING (scan_id) WHERE e.model_id = m.model_id AND s.patient_id = ?)"
      " ORDER BY m.model_id DESC LIMIT 1", NULL);
  gint64 id = 0;
  if (st == NULL)
    return 0;
  sqlite3_bind_text (st, 1, pid, -1, SQLITE_STATIC);
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      id = sqlite3_column_int64 (st, 0);
      *name = g_strdup (col_text (st, 1));
      *sha = g_strdup (col_text (st, 2));
    }
  sqlite3_finalize (st);
  return id;
}

static void
section_pairs (GString *h, JsonBuilder *jb, CxrStore *store, const char *pid, GArray *films,
               const char *db_dir, gboolean html)
{
  sqlite3_stmt *st = cxr_store_prepare (store,
      "SELECT r.fixed_scan_id, r.moving_scan_id, r.kind, r.dx_px, r.dy_px, r.angle_deg, r.scale,"
      " r.confidence, r.status, r.reason, r.cross_view, c.change_score, c.changed_area_mm2,"
      " c.overlay_path, c.peak_x_px, c.peak_y_px, r.fixed_aspect, r.moving_aspect"
      " FROM registrations r JOIN scans m ON m.scan_id = r.moving_scan_id"
      " LEFT JOIN pair_changes c USING (fixed_scan_id, moving_scan_id, kind)"
      " WHERE m.patient_id = ? ORDER BY m.visit, r.kind DESC", NULL);
  if (st == NULL)
    return;
  sqlite3_bind_text (st, 1, pid, -1, SQLITE_STATIC);
  if (html)
    g_string_append (h, "<h2>Registered pairs</h2><p class=\"muted\">Each film against the previous "
                        "frontal film and against the baseline: the earlier film, the later film "
                        "aligned to it, and what changed (red: brighter now, blue: darker).</p>");
  else
    {
      json_builder_set_member_name (jb, "pairs");
      json_builder_begin_array (jb);
    }
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      const Film *f = film_by_id (films, sqlite3_column_int64 (st, 0));
      const Film *m = film_by_id (films, sqlite3_column_int64 (st, 1));
      if (f == NULL || m == NULL)
        continue;
      CxrRegistration r = { 0 };
      r.dx_px = sqlite3_column_double (st, 3);
      r.dy_px = sqlite3_column_double (st, 4);
      r.angle_deg = sqlite3_column_double (st, 5);
      r.scale = sqlite3_column_double (st, 6);
      r.fixed_aspect = sqlite3_column_double (st, 16); /* NULL (square) reads 0 */
      r.moving_aspect = sqlite3_column_double (st, 17);
      const char *status = col_text (st, 8), *reason = col_text (st, 9), *kind = col_text (st, 2);
      gboolean cross = sqlite3_column_int (st, 10);
      double score = col_double (st, 11), area = col_double (st, 12);
      if (!html)
        {
          json_builder_begin_object (jb);
          json_builder_set_member_name (jb, "kind");
          json_builder_add_string_value (jb, kind);
          json_builder_set_member_name (jb, "fixed");
          json_builder_add_string_value (jb, f->image_index);
          json_builder_set_member_name (jb, "moving");
          json_builder_add_string_value (jb, m->image_index);
          const char *names[] = { "dx_px", "dy_px", "angle_deg", "scale", "confidence",
                                  "change_score", "changed_area_mm2" };
          double vals[] = { r.dx_px, r.dy_px, r.angle_deg, r.scale, col_double (st, 7), score, area };
          for (guint k = 0; k < G_N_ELEMENTS (names); k++)
            {
              json_builder_set_member_name (jb, names[k]);
              if (isnan (vals[k]))
                json_builder_add_null_value (jb);
              else
                json_builder_add_double_value (jb, vals[k]);
            }
          json_builder_set_member_name (jb, "status");
          json_builder_add_string_value (jb, status);
          json_builder_set_member_name (jb, "cross_view");
          json_builder_add_boolean_value (jb, cross);
          json_builder_set_member_name (jb, "overlay");
          if (col_text (st, 13))
            json_builder_add_string_value (jb, col_text (st, 13));
          else
            json_builder_add_null_value (jb);
          json_builder_end_object (jb);
          continue;
        }
      g_autofree char *fi = esc (f->image_index), *mi = esc (m->image_index), *er = esc (reason);
      g_string_append_printf (h, "<div class=\"pair\"><div><b>%s</b>: visit %d &rarr; %d<br>"
                              "<a href=\"#film-%" G_GINT64_FORMAT "\">%s</a> &rarr; "
                              "<a href=\"#film-%" G_GINT64_FORMAT "\">%s</a><br>"
                              "<span class=\"badge b-%s\">%s</span>%s<br>",
                              kind, f->visit, m->visit, f->scan_id, fi, m->scan_id, mi, status, status,
                              cross ? " <span class=\"badge b-cross\">cross-view</span>" : "");
      g_string_append_printf (h, "shift (%.1f, %.1f) px, %.2f&deg;, scale %.3f, confidence %.2f<br>",
                              r.dx_px, r.dy_px, r.angle_deg, r.scale, sqlite3_column_double (st, 7));
      if (reason)
        g_string_append_printf (h, "<span class=\"muted\">%s</span><br>", er);
      if (!isnan (score))
        {
          g_string_append_printf (h, "change score %.0f", score);
          if (!isnan (area))
            g_string_append_printf (h, ", changed area %.0f mm&sup2;", area);
        }
      g_string_append (h, "</div>");
      g_autofree char *fp = resolve (db_dir, f->path), *mp = resolve (db_dir, m->path);
      g_autoptr (CxrImage) fim = fp ? cxr_image_load (fp, NULL, NULL, NULL) : NULL;
      g_autoptr (CxrImage) mim = mp ? cxr_image_load (mp, NULL, NULL, NULL) : NULL;
      if (fim && mim)
        {
          g_string_append (h, "<figure>");
          thumb (h, fim, 220);
          g_string_append (h, "<figcaption>earlier</figcaption></figure>");
          if (g_strcmp0 (status, "failed") != 0)
            {
              r.status = CXR_REGISTER_OK;
              g_autoptr (CxrImage) w = cxr_register_warp (mim, &r, fim->width, fim->height);
              g_string_append (h, "<figure>");
              thumb (h, w, 220);
              g_string_append (h, "<figcaption>later, aligned</figcaption></figure>");
            }
          else
            {
              g_string_append (h, "<figure>");
              thumb (h, mim, 220);
              g_string_append (h, "<figcaption>later, not aligned (registration failed)</figcaption></figure>");
            }
        }
      g_autofree char *ov = resolve (db_dir, col_text (st, 13));
      g_autofree char *bytes = NULL;
      gsize len = 0;
      if (ov && g_file_get_contents (ov, &bytes, &len, NULL))
        {
          g_autoptr (GBytes) b = g_bytes_new_static (bytes, len);
          g_string_append (h, "<figure><img alt=\"difference\" width=\"220\" src=\"");
          data_uri (h, b);
          g_string_append (h, "\"><figcaption>change</figcaption></figure>");
        }
      g_string_append (h, "</div>");
    }
  sqlite3_finalize (st);
  if (!html)
    json_builder_end_array (jb);
}

static void
section_trends (GString *h, JsonBuilder *jb, CxrStore *store, const char *pid, GArray *films,
                gint64 model_id, gboolean html)
{
  if (model_id == 0)
    return;
  /* frontal ok films in visit order, one view kind: the most frequent */
  GArray *idx = g_array_new (FALSE, FALSE, sizeof (guint));
  int npa = 0, nap = 0;
  for (guint i = 0; i < films->len; i++)
    {
      const Film *f = &g_array_index (films, Film, i);
      npa += g_str_equal (f->view_kind, "PA") && g_str_equal (f->status, "ok");
      nap += g_str_equal (f->view_kind, "AP") && g_str_equal (f->status, "ok");
    }
  const char *view = npa >= nap ? "PA" : "AP";
  for (guint i = 0; i < films->len; i++)
    {
      const Film *f = &g_array_index (films, Film, i);
      if (g_str_equal (f->status, "ok") && (g_str_equal (f->view_kind, view)
                                            || g_str_equal (f->view_kind, "unknown")))
        g_array_append_val (idx, i);
    }
  int n = (int) idx->len;
  if (n < 2)
    {
      g_array_unref (idx);
      return;
    }
  g_autofree double *t = g_new (double, n), *y = g_new (double, n);
  gboolean days = TRUE;
  for (int i = 0; i < n; i++)
    {
      const Film *f = &g_array_index (films, Film, g_array_index (idx, guint, i));
      days = days && !isnan (f->day)
             && (i == 0 || f->day > g_array_index (films, Film, g_array_index (idx, guint, i - 1)).day);
    }
  for (int i = 0; i < n; i++)
    {
      const Film *f = &g_array_index (films, Film, g_array_index (idx, guint, i));
      const Film *f0 = &g_array_index (films, Film, g_array_index (idx, guint, 0));
      t[i] = days ? f->day - f0->day : f->visit;
    }
  const char *axis = days ? "days" : "visit";
  sqlite3_stmt *fl = cxr_store_prepare (store, "SELECT signal FROM progression_flags WHERE patient_id = ?"
                                        " AND kind IN ('slow_progression', 'acute_change')", NULL);
  g_autoptr (GHashTable) flagged = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (fl)
    {
      sqlite3_bind_text (fl, 1, pid, -1, SQLITE_STATIC);
      while (sqlite3_step (fl) == SQLITE_ROW)
        g_hash_table_add (flagged, g_strdup (col_text (fl, 0)));
      sqlite3_finalize (fl);
    }
  sqlite3_stmt *fq = cxr_store_prepare (store, "SELECT DISTINCT finding FROM predictions WHERE model_id = ?"
                                        " ORDER BY finding", NULL);
  sqlite3_stmt *pq = cxr_store_prepare (store, "SELECT probability FROM predictions WHERE scan_id = ?"
                                        " AND model_id = ? AND finding = ?", NULL);
  sqlite3_stmt *eq = cxr_store_prepare (store, "SELECT cosine_distance(a.vector, b.vector) FROM embeddings a,"
                                        " embeddings b WHERE a.scan_id = ? AND b.scan_id = ? AND"
                                        " a.model_id = ?3 AND b.model_id = ?3", NULL);
  if (fq == NULL || pq == NULL || eq == NULL)
    goto out;
  if (html)
    g_string_append_printf (h, "<h2>Trends (%s films, time axis: %s)</h2><div class=\"plots\">", view, axis);
  else
    {
      json_builder_set_member_name (jb, "trends");
      json_builder_begin_object (jb);
      json_builder_set_member_name (jb, "time_axis");
      json_builder_add_string_value (jb, axis);
    }
  sqlite3_bind_int64 (fq, 1, model_id);
  for (int sig = 0;; sig++)
    {
      g_autofree char *finding = NULL, *signal = NULL;
      if (sig == 0)
        signal = g_strdup ("embedding_distance");
      else
        {
          if (sqlite3_step (fq) != SQLITE_ROW)
            break;
          finding = g_strdup (col_text (fq, 0));
          signal = g_strdup_printf ("probability:%s", finding);
        }
      gboolean have = TRUE;
      for (int i = 0; i < n && have; i++)
        {
          const Film *f = &g_array_index (films, Film, g_array_index (idx, guint, i));
          const Film *f0 = &g_array_index (films, Film, g_array_index (idx, guint, 0));
          sqlite3_stmt *q = sig == 0 ? eq : pq;
          if (sig == 0)
            {
              sqlite3_bind_int64 (q, 1, f0->scan_id);
              sqlite3_bind_int64 (q, 2, f->scan_id);
              sqlite3_bind_int64 (q, 3, model_id);
            }
          else
            {
              sqlite3_bind_int64 (q, 1, f->scan_id);
              sqlite3_bind_int64 (q, 2, model_id);
              sqlite3_bind_text (q, 3, finding, -1, SQLITE_STATIC);
            }
          have = sqlite3_step (q) == SQLITE_ROW && sqlite3_column_type (q, 0) != SQLITE_NULL;
          if (have)
            y[i] = sqlite3_column_double (q, 0);
          sqlite3_reset (q);
        }
      if (!have)
        continue;
      gboolean is_flagged = g_hash_table_contains (flagged, signal);
      if (html)
        svg_plot (h, sig == 0 ? "embedding drift from the first film" : finding, t, y, n, axis,
                  is_flagged, sig == 0);
      else
        {
          json_builder_set_member_name (jb, signal);
          json_builder_begin_array (jb);
          for (int i = 0; i < n; i++)
            json_builder_add_double_value (jb, y[i]);
          json_builder_end_array (jb);
        }
    }
  if (html)
    g_string_append (h, "</div>");
  else
    json_builder_end_object (jb);
out:
  sqlite3_finalize (fq);
  sqlite3_finalize (pq);
  sqlite3_finalize (eq);
  g_array_unref (idx);
}

static void
section_flags (GString *h, JsonBuilder *jb, CxrStore *store, const char *pid, GArray *films,
               gboolean html)
{
  sqlite3_stmt *st = cxr_store_prepare (store,
      "SELECT signal, view_kind, kind, evidence, event_visit, first_visit, last_visit, p_value"
      " FROM progression_flags WHERE patient_id = ? AND kind IN ('slow_progression', 'acute_change',"
      " 'improving') ORDER BY kind = 'improving', p_value", NULL);
  if (st == NULL)
    return;
  sqlite3_bind_text (st, 1, pid, -1, SQLITE_STATIC);
  if (html)
    g_string_append (h, "<h2>Flags</h2>");
  else
    {
      json_builder_set_member_name (jb, "flags");
      json_builder_begin_array (jb);
    }
  int count = 0;
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      count++;
      const char *kind = col_text (st, 2);
      if (!html)
        {
          json_builder_begin_object (jb);
          const char *keys[] = { "signal", "view_kind", "kind", "evidence" };
          for (int k = 0; k < 4; k++)
            {
              json_builder_set_member_name (jb, keys[k]);
              json_builder_add_string_value (jb, col_text (st, k));
            }
          json_builder_set_member_name (jb, "p_value");
          if (isnan (col_double (st, 7)))
            json_builder_add_null_value (jb); /* fewer than 3 films: no test */
          else
            json_builder_add_double_value (jb, col_double (st, 7));
          json_builder_end_object (jb);
          continue;
        }
      g_autofree char *ev = esc (col_text (st, 3));
      g_string_append_printf (h, "<div class=\"flag %s\"><b>%s</b> (%s): %s. Films:", kind, kind,
                              col_text (st, 1), ev);
      int v0 = sqlite3_column_int (st, 5), v1 = sqlite3_column_int (st, 6);
      for (guint i = 0; i < films->len; i++)
        {
          const Film *f = &g_array_index (films, Film, i);
          if (f->visit >= v0 && f->visit <= v1 && g_str_equal (f->view_kind, col_text (st, 1)))
            g_string_append_printf (h, " <a href=\"#film-%" G_GINT64_FORMAT "\">%d</a>", f->scan_id,
                                    f->visit);
        }
      g_string_append (h, "</div>");
    }
  sqlite3_finalize (st);
  if (html && count == 0)
    g_string_append (h, "<p>No progression flags.</p>");
  if (!html)
    json_builder_end_array (jb);
}

/**
 * cxr_report_patient:
 * Writes DIR/patient_ID.html (or .json) for one patient.
 *
 * Returns: (transfer full): the path written, or %NULL with @error set.
 */
char *
cxr_report_patient (CxrStore *store, const char *pid, const char *out_dir, CxrReportFormat fmt,
                    GError **error)
{
  sqlite3_stmt *st = cxr_store_prepare (store,
      "SELECT sex, n_scans, n_frontal, first_age_years, last_age_years FROM patients"
      " WHERE patient_id = ?", error);
  if (st == NULL)
    return NULL;
  sqlite3_bind_text (st, 1, pid, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    {
      sqlite3_finalize (st);
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT, "%s: no patient '%s'",
                   cxr_store_path (store), pid);
      return NULL;
    }
  g_autofree char *sex = g_strdup (col_text (st, 0));
  int n_scans = sqlite3_column_int (st, 1), n_frontal = sqlite3_column_int (st, 2);
  double a0 = col_double (st, 3), a1 = col_double (st, 4);
  sqlite3_finalize (st);
  GArray *films = load_films (store, pid, error);
  if (films == NULL)
    return NULL;
  g_autofree char *mname = NULL, *msha = NULL;
  gint64 model_id = patient_model (store, pid, &mname, &msha);
  g_autofree char *db_dir = g_path_get_dirname (cxr_store_path (store));
  gboolean html = fmt == CXR_REPORT_HTML;
  GString *h = g_string_new (NULL);
  g_autoptr (JsonBuilder) jb = json_builder_new ();
  g_autofree char *ep = esc (pid);
  /* who and what */
  GString *hashes = g_string_new (NULL);
  for (guint i = 0; i < films->len; i++)
    {
      const Film *f = &g_array_index (films, Film, i);
      if (f->sha256)
        g_string_append_printf (hashes, "%s%s %.16s", hashes->len ? ", " : "", f->image_index, f->sha256);
    }
  if (html)
    {
      g_string_append_printf (h, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                              "<title>cxrtrack: patient %s</title><style>%s</style></head><body>"
                              "<h1>Patient %s</h1><table>", ep, css, ep);
      g_string_append_printf (h, "<tr><td>sex</td><td>%s</td></tr><tr><td>films</td><td>%d (%d frontal, "
                              "readable)</td></tr>", sex ? sex : "unknown", n_scans, n_frontal);
      if (!isnan (a0))
        g_string_append_printf (h, "<tr><td>age</td><td>%.0f to %.0f years</td></tr>", a0, a1);
      g_autofree char *emn = esc (mname), *edb = esc (cxr_store_path (store)), *eh = esc (hashes->str);
      g_string_append_printf (h, "<tr><td>model</td><td>%s%s%.16s</td></tr>", model_id ? emn : "none",
                              model_id ? ", sha256 " : "", model_id ? msha : "");
      g_string_append_printf (h, "<tr><td>cxrtrack</td><td>%s</td></tr><tr><td>database</td><td>%s"
                              "</td></tr><tr><td>input films (sha256)</td><td class=\"muted\">%s</td></tr>"
                              "</table>", CXR_VERSION, edb, eh);
    }
  else
    {
      json_builder_begin_object (jb);
      const char *k[] = { "patient_id", "sex", "cxrtrack_version", "database", "model", "model_sha256" };
      const char *v[] = { pid, sex, CXR_VERSION, cxr_store_path (store), mname, msha };
      for (int i = 0; i < 6; i++)
        {
          json_builder_set_member_name (jb, k[i]);
          if (v[i])
            json_builder_add_string_value (jb, v[i]);
          else
            json_builder_add_null_value (jb);
        }
    }
  g_string_free (hashes, TRUE);
  section_flags (h, jb, store, pid, films, html);
  /* timeline strip */
  if (html)
    g_string_append (h, "<h2>Films</h2><div class=\"strip\">");
  else
    {
      json_builder_set_member_name (jb, "films");
      json_builder_begin_array (jb);
    }
  for (guint i = 0; i < films->len; i++)
    {
      const Film *f = &g_array_index (films, Film, i);
      if (!html)
        {
          json_builder_begin_object (jb);
          const char *k[] = { "image_index", "view_kind", "status", "finding_labels", "sha256", "error" };
          const char *v[] = { f->image_index, f->view_kind, f->status, f->labels, f->sha256, f->error };
          for (int q = 0; q < 6; q++)
            {
              json_builder_set_member_name (jb, k[q]);
              if (v[q])
                json_builder_add_string_value (jb, v[q]);
              else
                json_builder_add_null_value (jb);
            }
          json_builder_set_member_name (jb, "visit");
          json_builder_add_int_value (jb, f->visit);
          json_builder_end_object (jb);
          continue;
        }
      g_autofree char *ei = esc (f->image_index), *el = esc (f->labels);
      g_string_append_printf (h, "<figure id=\"film-%" G_GINT64_FORMAT "\">", f->scan_id);
      g_autofree char *p = resolve (db_dir, f->path);
      g_autoptr (CxrImage) im = p && g_str_equal (f->status, "ok") ? cxr_image_load (p, NULL, NULL, NULL)
                                                                    : NULL;
      if (im == NULL || !thumb (h, im, 150))
        g_string_append (h, "<div style=\"width:150px;height:150px;background:#ddd\"></div>");
      g_string_append_printf (h, "<figcaption>visit %d", f->visit);
      if (!isnan (f->day))
        g_string_append_printf (h, ", day %.0f", f->day - g_array_index (films, Film, 0).day);
      g_string_append_printf (h, " <span class=\"badge b-%s\">%s</span>", f->view_kind,
                              f->view_position ? f->view_position : f->view_kind);
      if (!g_str_equal (f->status, "ok"))
        g_string_append_printf (h, " <span class=\"badge b-%s\">%s</span>", f->status, f->status);
      g_string_append_printf (h, "<br>%s<br><span class=\"muted\">%s</span></figcaption></figure>", ei, el);
    }
  if (html)
    g_string_append (h, "</div>");
  else
    json_builder_end_array (jb);
  section_trends (h, jb, store, pid, films, model_id, html);
  section_pairs (h, jb, store, pid, films, db_dir, html);
  g_autofree char *safe = g_strdup (pid);
  g_strdelimit (safe, "/\\ ", '_');
  g_autofree char *path = g_strdup_printf ("%s/patient_%s.%s", out_dir, safe, html ? "html" : "json");
  gboolean ok;
  g_autoptr (GError) werr = NULL;
  if (html)
    {
      g_string_append_printf (h, "<p class=\"muted\">cxrtrack %s</p>%s</body></html>\n", CXR_VERSION,
                              self_check);
      ok = g_file_set_contents (path, h->str, (gssize) h->len, &werr);
    }
  else
    {
      json_builder_end_object (jb);
      g_autoptr (JsonGenerator) gen = json_generator_new ();
      g_autoptr (JsonNode) root = json_builder_get_root (jb);
      json_generator_set_root (gen, root);
      json_generator_set_pretty (gen, TRUE);
      ok = json_generator_to_file (gen, path, &werr);
    }
  g_string_free (h, TRUE);
  g_array_unref (films);
  if (!ok)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: %s", path, werr->message);
      return NULL;
    }
  return g_steal_pointer (&path);
}

/**
 * cxr_report_index:
 * Writes DIR/index.html: flagged patients first (sortable), counts per
 * finding, a link to each patient's page; and, with @pages, every page of
 * a patient with a registration.
 */
char *
cxr_report_index (CxrStore *store, const char *out_dir, gboolean pages, guint *n_pages,
                  GError **error)
{
  *n_pages = 0;
  GString *h = g_string_new (NULL);
  g_string_append_printf (h, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                          "<title>cxrtrack: cohort</title><style>%s</style></head><body>"
                          "<h1>Cohort</h1>", css);
  sqlite3_stmt *st = cxr_store_prepare (store,
      "SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM scans),"
      " (SELECT count(*) FROM flagged_patients)", error);
  if (st == NULL)
    return NULL;
  if (sqlite3_step (st) == SQLITE_ROW)
    g_string_append_printf (h, "<p>%d patients, %d films, %d flagged.</p>", sqlite3_column_int (st, 0),
                            sqlite3_column_int (st, 1), sqlite3_column_int (st, 2));
  sqlite3_finalize (st);
  g_string_append (h, "<h2>Patients (click a column to sort)</h2><table><thead><tr><th>patient</th>"
                      "<th>films</th><th>frontal</th><th>flags</th><th>strongest</th><th>min p</th>"
                      "<th>signals</th></tr></thead><tbody>");
  st = cxr_store_prepare (store,
      "SELECT p.patient_id, p.n_scans, p.n_frontal, coalesce(f.n_flags, 0), f.strongest_kind,"
      " f.min_p_value, f.signals, EXISTS (SELECT 1 FROM registrations r JOIN scans s"
      " ON s.scan_id = r.moving_scan_id WHERE s.patient_id = p.patient_id)"
      " FROM patients p LEFT JOIN flagged_patients f USING (patient_id)"
      " ORDER BY f.n_flags IS NULL, f.strongest_kind <> 'acute_change', f.min_p_value, p.patient_id", error);
  if (st == NULL)
    return NULL;
  GPtrArray *todo = g_ptr_array_new_with_free_func (g_free);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      const char *pid = col_text (st, 0);
      g_autofree char *ep = esc (pid), *es = esc (col_text (st, 6));
      g_autofree char *safe = g_strdup (pid);
      g_strdelimit (safe, "/\\ ", '_');
      gboolean has_page = sqlite3_column_int (st, 7);
      if (has_page)
        g_string_append_printf (h, "<tr><td><a href=\"patient_%s.html\">%s</a></td>", safe, ep);
      else
        g_string_append_printf (h, "<tr><td>%s</td>", ep);
      double p = col_double (st, 5);
      char pv[32] = "";
      if (!isnan (p))
        g_snprintf (pv, sizeof pv, "%.3g", p);
      g_string_append_printf (h, "<td>%d</td><td>%d</td><td>%d</td><td>%s</td><td data-v=\"%g\">%s</td>"
                              "<td>%s</td></tr>", sqlite3_column_int (st, 1), sqlite3_column_int (st, 2),
                              sqlite3_column_int (st, 3), col_text (st, 4) ? col_text (st, 4) : "",
                              isnan (p) ? 2.0 : p, pv, es);
      if (pages && has_page)
        g_ptr_array_add (todo, g_strdup (pid));
    }
  sqlite3_finalize (st);
  g_string_append (h, "</tbody></table><h2>Findings (labels in the metadata; flags)</h2><table><thead>"
                      "<tr><th>finding</th><th>films labelled</th><th>patients flagged</th></tr></thead><tbody>");
  st = cxr_store_prepare (store,
      "SELECT finding, count(*), (SELECT count(DISTINCT patient_id) FROM progression_flags"
      " WHERE signal = 'probability:' || finding AND kind IN ('slow_progression', 'acute_change'))"
      " FROM scan_findings GROUP BY finding ORDER BY 2 DESC", error);
  if (st == NULL)
    return NULL;
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      g_autofree char *ef = esc (col_text (st, 0));
      g_string_append_printf (h, "<tr><td>%s</td><td>%d</td><td>%d</td></tr>", ef,
                              sqlite3_column_int (st, 1), sqlite3_column_int (st, 2));
    }
  sqlite3_finalize (st);
  g_string_append_printf (h, "</tbody></table><p class=\"muted\">cxrtrack %s</p>%s%s</body></html>\n",
                          CXR_VERSION, sorter, self_check);
  g_autofree char *path = g_build_filename (out_dir, "index.html", NULL);
  g_autoptr (GError) werr = NULL;
  gboolean ok = g_file_set_contents (path, h->str, (gssize) h->len, &werr);
  g_string_free (h, TRUE);
  if (!ok)
    {
      g_ptr_array_unref (todo);
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: %s", path, werr->message);
      return NULL;
    }
  for (guint i = 0; i < todo->len; i++)
    {
      g_autofree char *p = cxr_report_patient (store, todo->pdata[i], out_dir, CXR_REPORT_HTML, error);
      if (p == NULL)
        {
          g_ptr_array_unref (todo);
          return NULL;
        }
      (*n_pages)++;
    }
  g_ptr_array_unref (todo);
  return g_steal_pointer (&path);
}
