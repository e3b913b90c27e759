/* SPDX-License-Identifier: MIT
 *
 * The HTML renderer of a patient's report and the cohort index. A page
 * is self-contained: images inline as data: URIs, plots as inline SVG, no
 * external assets, so it opens offline. Films are read again only to make
 * thumbnails and the registered views of each pair, and only if the file
 * is still the one ingested (its SHA-256): a changed film is not shown.
 *
 * Nothing from an input file or the store reaches a page unescaped: every
 * such value goes through esc() (made valid UTF-8, then escaped for text
 * and attributes alike), links to pages are built from safe names and
 * URL-encoded, and a Content-Security-Policy lets only the page's own
 * style sheet and scripts (named by their SHA-256) apply, so a script
 * hidden in the metadata cannot run.
 *
 * Each page carries a few lines of script that record, once the page has
 * loaded, how many of its images decoded (body data-images-ok="n/m"); the
 * browser test reads it.
 */
#include <math.h>
#include <string.h>

#include "cxr-config.h"
#include "cxr/error.h"
#include "cxr/progression.h"
#include "cxr/register.h"
#include "cxr/trend.h"
#include "report-private.h"

static const char css[]
    = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}"
      "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}"
      "table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #e4e4e4;text-align:left}"
      "th{cursor:pointer;background:#eee}.strip{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}"
      ".bx{margin:3px 0;font-size:11px}.bx td{border:1px solid #bbb;padding:0 5px;text-align:right}"
      ".summary{background:#fff;border:2px solid #999;padding:8px 12px;margin:12px 0}"
      ".v-worse{border-color:#c33}.v-better{border-color:#3a3}.v-mixed{border-color:#c90}"
      ".summary>b{font-size:17px}details{margin:4px 0}"
      ".bx-no{opacity:.45}.z0{background:#fdfbe9}.z1{background:#fbf1b7}.z2{background:#f9dc8c}"
      ".z3{background:#f5bd6c}.z4{background:#ee9a58}.z5{background:#e2714b}.z6{background:#cf4a43;"
      "color:#fff}figure{margin:0;background:#fff;border:1px solid #ddd;padding:4px;font-size:12px}"
      "figure img{display:block}.badge{display:inline-block;padding:0 6px;border-radius:8px;"
      "font-size:11px;color:#fff;background:#777}.b-lateral,.b-invalid,.b-missing{background:#a33}"
      ".b-failed,.b-changed{background:#a33}.b-low_confidence{background:#b8860b}.b-ok{background:#2a7}"
      ".b-cross{background:#56a}.flag{padding:6px 10px;margin:6px 0;background:#fff;border-left:4px solid #c33}"
      ".flag.improving{border-color:#2a7}.flag.unconfirmed_change{border-color:#b8860b}.flag.crossview{border-color:#56a}.pair{display:flex;gap:8px;align-items:flex-start;margin:10px 0;"
      "background:#fff;padding:6px;border:1px solid #ddd}.plots{display:flex;flex-wrap:wrap;gap:6px}"
      "svg{background:#fff;border:1px solid #ddd}.muted{color:#888}.warn{color:#a33}"
      ".ph{width:150px;height:150px;background:#ddd}";

static const char self_check[]
    = "<script>window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);"
      "document.body.setAttribute('data-images-ok',i.filter(function(x){return x.naturalWidth>0}).length+'/'+i.length);});"
      "</script>";

static const char sorter[]
    = "<script>document.querySelectorAll('th').forEach(function(th,c){th.addEventListener('click',function(){"
      "var tb=th.closest('table').tBodies[0],r=Array.prototype.slice.call(tb.rows),d=th.dataset.dir=th.dataset.dir==='a'?'d':'a';"
      "r.sort(function(x,y){var a=x.cells[c].dataset.v||x.cells[c].textContent,b=y.cells[c].dataset.v||y.cells[c].textContent,"
      "na=parseFloat(a),nb=parseFloat(b),k=isNaN(na)||isNaN(nb)?a.localeCompare(b):na-nb;return d==='a'?k:-k;});"
      "r.forEach(function(x){tb.appendChild(x)});});});</script>";

/* Text from an input file or the store, for HTML text or an attribute
 * value: invalid UTF-8 replaced, & < > ' " escaped. */
static char *
esc (const char *s)
{
  g_autofree char *valid = g_utf8_make_valid (s ? s : "", -1);
  return g_markup_escape_text (valid, -1);
}

/* The CSP source of an element (<style>...</style>, <script>...</script>):
 * the SHA-256 of what is between its tags. */
static char *
csp_hash (const char *element)
{
  const char *a = strchr (element, '>') + 1, *b = strrchr (element, '<');
  g_autoptr (GChecksum) c = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (c, (const guchar *) a, b - a);
  guint8 digest[32];
  gsize n = sizeof digest;
  g_checksum_get_digest (c, digest, &n);
  g_autofree char *b64 = g_base64_encode (digest, n);
  return g_strdup_printf ("'sha256-%s'", b64);
}

/* The head of a page, whose policy allows images from data: URIs, the
 * page's style sheet and the scripts named (NULL-terminated); nothing else
 * loads or runs. */
static void
page_head (GString *h, const char *title, const char *const *scripts)
{
  g_autofree char *style = g_strdup_printf ("<style>%s</style>", css);
  g_autofree char *style_hash = csp_hash (style);
  GString *script_hashes = g_string_new (NULL);
  for (const char *const *sc = scripts; *sc; sc++)
    {
      g_autofree char *hash = csp_hash (*sc);
      g_string_append_printf (script_hashes, " %s", hash);
    }
  g_autofree char *et = esc (title);
  g_string_append_printf (h,
                          "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                          "'none'; img-src data:; style-src %s; script-src%s\">"
                          "<title>%s</title>%s</head><body>",
                          style_hash, script_hashes->str, et, style);
  g_string_free (script_hashes, TRUE);
}

static void
data_uri (GString *out, GBytes *png)
{
  g_autofree char *b64 = g_base64_encode (g_bytes_get_data (png, NULL), g_bytes_get_size (png));
  g_string_append_printf (out, "data:image/png;base64,%s", b64);
}

/* A film as an inline PNG thumbnail w px wide, with the outline of its
 * lung fields in green when @lungs (a mask over the same extent) is
 * given; FALSE if it cannot be made. */
static gboolean
thumb_outlined (GString *out, const CxrImage *im, const CxrImage *lungs, int w)
{
  int h = MAX (1, (int) lround ((double) im->height * w / im->width));
  g_autoptr (CxrImage) r = cxr_image_resize (im, w, h);
  g_autoptr (CxrImage) l = lungs ? cxr_image_resize (lungs, w, h) : NULL;
  int ch = l ? 3 : 1;
  g_autofree guint8 *px = g_new (guint8, (gsize) w * h * ch);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        gsize i = (gsize) y * w + x;
        guint8 g = (guint8) (CLAMP (r->data[i], 0.f, 1.f) * 255 + 0.5f);
        if (!l)
          {
            px[i] = g;
            continue;
          }
        gboolean in = l->data[i] > 0.5f;
        gboolean edge
            = in
              && (x == 0 || y == 0 || x == w - 1 || y == h - 1 || l->data[i - 1] <= 0.5f
                  || l->data[i + 1] <= 0.5f || l->data[i - w] <= 0.5f || l->data[i + w] <= 0.5f);
        px[3 * i] = edge ? 40 : g;
        px[3 * i + 1] = edge ? 210 : g;
        px[3 * i + 2] = edge ? 60 : g;
      }
  g_autoptr (GBytes) png = cxr_image_encode_png8 (px, w, h, ch, 6, NULL);
  if (png == NULL)
    return FALSE;
  g_string_append (out, "<img alt=\"film\" width=\"");
  g_string_append_printf (out, "%d\" height=\"%d\" src=\"", w, h);
  data_uri (out, png);
  g_string_append (out, "\">");
  return TRUE;
}

static gboolean
thumb (GString *out, const CxrImage *im, int w)
{
  return thumb_outlined (out, im, NULL, w);
}

/* A page being rendered, and the films it found changed since ingest. */
typedef struct {
  GString *h;
  const CxrReportData *d;
  GHashTable *changed; /* scan ids */
} Page;

/* A film of the report, decoded, if its file is still the one ingested;
 * a changed one is noted once and not shown. */
static CxrImage *
film_image (Page *pg, const CxrReportFilm *f)
{
  if (f->path == NULL || !g_str_equal (f->status, "ok"))
    return NULL;
  g_autoptr (GError) err = NULL;
  CxrImage *im = cxr_image_load_checked (f->path, f->sha256, &pg->d->limits, NULL, &err);
  if (g_error_matches (err, CXR_ERROR, CXR_ERROR_CONFLICT))
    g_hash_table_add (pg->changed, GINT_TO_POINTER (f->scan_id));
  return im;
}

/* A film's lung mask from the store's artifacts, or NULL. */
static CxrImage *
lung_mask (Page *pg, const CxrReportFilm *f)
{
  if (f->lung_mask_path == NULL)
    return NULL;
  g_autoptr (GBytes) b = cxr__report_artifact (pg->d, f->lung_mask_path, NULL);
  CxrImage *im = NULL;
  if (b)
    cxr_image_decode (f->lung_mask_path, g_bytes_get_data (b, NULL), g_bytes_get_size (b), NULL,
                      NULL, &im, NULL);
  return im;
}

/* v from [a, b] to [lo, hi] */
static double
map_to (double v, double a, double b, double lo, double hi)
{
  return lo + (v - a) / (b - a) * (hi - lo);
}

/* A tick step of about @range / 4 that reads well: 1, 2 or 5 x 10^k. */
static double
nice_step (double range)
{
  double raw = range / 4, mag = pow (10, floor (log10 (raw))), f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* A small SVG line plot of a trend: its limit as a grey band around the
 * first film's value (0..limit for a signal measured from the first
 * film), so that what stays inside it reads as noise, and the acute step
 * as dashed lines; the y axis spans at least the band, never only the
 * series' own range, and every probability of a set shares one scale
 * (@fam_hi: the largest of them), so that a change of 0.01 does not look
 * as steep as one of 0.3. Both axes have ticks and names. The films a
 * flag rests on (a step's two films, the first film of a lasting event)
 * are ringed in red; the Theil-Sen line is dashed; the flag's kind is the
 * caption. */
static void
svg_plot (GString *out, const CxrReportTrendSet *set, const CxrReportTrend *tr, double fam_hi)
{
  const double *t = set->t, *y = tr->y;
  int n = set->n;
  gboolean zero_based = tr->signal->from_baseline;
  gboolean one_scale = tr->signal->one_scale;
  const int W = 300, H = 178, L = 44, R = 10, T = 22, B = 48;
  double t0 = t[0], t1 = t[n - 1], y0 = zero_based ? 0 : y[0], y1 = y[0];
  double band_lo = NAN, band_hi = NAN;
  /* the acute limit as the flags use it: the flag's own, else the default
   * acute_factor times the limit (a series with a large rise raises it) */
  CxrProgressionOptions po;
  cxr_progression_options_init (&po);
  double acute = tr->flag && !isnan (tr->flag->acute_limit) ? tr->flag->acute_limit
                                                            : po.acute_factor * tr->limit;
  if (!isnan (tr->limit))
    {
      band_lo = zero_based ? 0 : y[0] - tr->limit;
      band_hi = y[0] + tr->limit;
      y0 = MIN (y0, band_lo);
      y1 = MAX (y1, band_hi);
    }
  for (int i = 0; i < n; i++)
    {
      y0 = MIN (y0, y[i]);
      y1 = MAX (y1, y[i]);
    }
  /* a probability's axis (one_scale) starts at 0 and is shared by its family
   * (fam_hi); every axis stays inside the signal's range */
  if (one_scale)
    {
      y0 = 0.0;
      y1 = MAX (y1, fam_hi);
    }
  if (!isnan (tr->signal->lo))
    y0 = MAX (y0, tr->signal->lo);
  if (!isnan (tr->signal->hi))
    y1 = MIN (y1, tr->signal->hi);
  if (y1 - y0 < 1e-9)
    y1 = y0 + 1e-3;
  /* the axis from tick to tick */
  double ystep = nice_step (y1 - y0);
  y0 = floor (y0 / ystep + 1e-9) * ystep;
  y1 = ceil (y1 / ystep - 1e-9) * ystep;
  if (t1 <= t0)
    t1 = t0 + 1;
  const char *colour = tr->flagged ? "#c33" : "#357";
  g_autofree char *et = esc (tr->title);
  g_string_append_printf (out,
                          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">"
                          "<text x=\"%d\" y=\"15\" font-size=\"12\" fill=\"%s\">%s%s</text>",
                          W, H, L, colour, et, tr->flagged ? " (flagged)" : "");
  if (!isnan (band_lo))
    {
      double yt = map_to (MIN (band_hi, y1), y0, y1, H - B, T);
      double yb = map_to (MAX (band_lo, y0), y0, y1, H - B, T);
      g_string_append_printf (out,
                              "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\""
                              " fill=\"#e6e6e6\"><title>limit %.3g: change within the band is"
                              " what re-posed copies or the store's visits show</title></rect>",
                              L, yt, W - R - L, MAX (yb - yt, 0.5), tr->limit);
    }
  /* ticks and grid: y, with the decimals the step needs */
  int decimals = MAX (0, (int) -floor (log10 (ystep) + 1e-9));
  int nticks = (int) lround ((y1 - y0) / ystep);
  for (int k = 0; k <= nticks; k++)
    {
      double v = y0 + k * ystep, py = map_to (v, y0, y1, H - B, T);
      g_string_append_printf (out,
                              "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                              "<text x=\"%d\" y=\"%.1f\" font-size=\"9\" text-anchor=\"end\">%.*f"
                              "</text>",
                              L, py, W - R, py, L - 3, py + 3, decimals,
                              fabs (v) < ystep * 1e-6 ? 0.0 : v);
    }
  /* the acute step, above (and for a level, below) the first film */
  if (!isnan (acute) && acute > 0)
    for (int sgn = 1; sgn >= (zero_based ? 1 : -1); sgn -= 2)
      {
        double v = (zero_based ? 0 : y[0]) + sgn * acute;
        if (v < y0 || v > y1)
          continue;
        double py = map_to (v, y0, y1, H - B, T);
        g_string_append_printf (out,
                                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#c90\""
                                " stroke-dasharray=\"2 3\"><title>acute limit %.3g: a step this"
                                " large between two films is acute</title></line>",
                                L, py, W - R, py, acute);
      }
  g_string_append_printf (out,
                          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>"
                          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>",
                          L, H - B, W - R, H - B, L, T, L, H - B);
  /* ticks: x, at each film when they are few, else at a round step */
  double xstep = n <= 8 ? 0 : MAX (1.0, nice_step (t1 - t0));
  for (int i = 0; xstep == 0 ? i < n : t0 + i * xstep <= t1 + 1e-9; i++)
    {
      double v = xstep == 0 ? t[i] - t0 : i * xstep;
      double px = map_to (t0 + v, t0, t1, L, W - R);
      g_string_append_printf (
          out,
          "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#999\"/>"
          "<text x=\"%.1f\" y=\"%d\" font-size=\"9\" text-anchor=\"middle\">%.0f"
          "</text>",
          px, H - B, px, H - B + 3, px, H - B + 12,
          g_str_equal (set->time_axis, "days") ? v : t0 + v);
    }
  g_string_append_printf (
      out, "<text x=\"%d\" y=\"%d\" font-size=\"9\" text-anchor=\"middle\">%s</text>",
      (L + W - R) / 2, H - B + 23,
      g_str_equal (set->time_axis, "days") ? "days from the first film" : "visit");
  g_string_append (out, "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"");
  g_string_append_printf (out, "%s\" points=\"", colour);
  for (int i = 0; i < n; i++)
    g_string_append_printf (out, "%.1f,%.1f ", map_to (t[i], t0, t1, L, W - R),
                            map_to (y[i], y0, y1, H - B, T));
  g_string_append (out, "\"/>");
  const CxrFlagRow *fl = tr->flag;
  for (int i = 0; i < n; i++)
    {
      double cx = map_to (t[i], t0, t1, L, W - R), cy = map_to (y[i], y0, y1, H - B, T);
      g_string_append_printf (out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", cx,
                              cy, colour);
      gboolean evidence
          = tr->flagged && fl
            && (set->visits[i] == fl->step_from_visit || set->visits[i] == fl->step_to_visit
                || (fl->kind == CXR_TREND_SLOW_PROGRESSION && set->visits[i] == fl->event_visit));
      if (evidence)
        g_string_append_printf (out,
                                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"none\""
                                " stroke=\"#c33\" stroke-width=\"1.5\"><title>visit %d: the flag"
                                " rests on this film</title></circle>",
                                cx, cy, set->visits[i]);
    }
  CxrTheilSen ts;
  if (n >= 3 && cxr_trend_theil_sen (t, y, n, 0.95, &ts))
    g_string_append_printf (out,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\""
                            " stroke-dasharray=\"4 3\"/>",
                            (double) L, map_to (ts.intercept + ts.slope * t0, y0, y1, H - B, T),
                            (double) (W - R),
                            map_to (ts.intercept + ts.slope * t1, y0, y1, H - B, T), colour);
  const char *caption = n < 3 ? "2 films: no trend can be tested, only a step"
                        : fl  ? cxr_trend_kind_name (fl->kind)
                              : "stable";
  g_string_append_printf (out, "<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"%s\">%s</text>", L,
                          H - 6, colour, caption);
  g_string_append (out, "</svg>");
}

static const char *const page_scripts[] = { self_check, NULL };
static const char *const index_scripts[] = { sorter, self_check, NULL };

static const char *
verdict_text (const char *v)
{
  return g_str_equal (v, "worse")    ? "Worse"
         : g_str_equal (v, "better") ? "Better"
         : g_str_equal (v, "stable") ? "Stable: no change beyond the limits"
         : g_str_equal (v, "mixed")
             ? "Mixed: changes in both directions, or change with no direction"
             : "Not enough films: no view has two readable films to compare";
}

static const char *
kind_text (CxrTrendKind k)
{
  switch (k)
    {
    case CXR_TREND_ACUTE_CHANGE: return "a step beyond the acute limit, confirmed by the next film";
    case CXR_TREND_UNCONFIRMED_CHANGE:
      return "a step beyond the acute limit at the latest film: no later film confirms it yet";
    case CXR_TREND_SLOW_PROGRESSION: return "a rise beyond the limit that lasts";
    case CXR_TREND_IMPROVING: return "a significant fall";
    default: return cxr_trend_kind_name (k);
    }
}

/* An event's signals as a reader names them, the first @max, and how many
 * more. */
static void
event_signals (GString *h, const CxrReportEvent *e, guint max)
{
  for (guint k = 0; k < e->flags->len && k < max; k++)
    {
      g_autofree char *l
          = cxr__report_signal_label (((const CxrFlagRow *) e->flags->pdata[k])->signal);
      g_autofree char *el = esc (l);
      g_string_append_printf (h, "%s%s", k ? ", " : "", el);
    }
  if (e->flags->len > max)
    g_string_append_printf (h, " and %u more", e->flags->len - max);
}

static void
event_when (GString *h, const CxrReportData *d, const CxrReportEvent *e)
{
  g_autofree char *from = cxr__report_when (d, e->from_visit);
  g_autofree char *to = cxr__report_when (d, e->to_visit);
  g_autofree char *ef = esc (from), *et = esc (to), *ev = esc (e->view);
  g_string_append_printf (h, "from %s to %s (%s films, visits %d &rarr; %d)", ef, et, ev,
                          e->from_visit, e->to_visit);
}

/* The answer first: the verdict, each event in a line, the first event's
 * two films side by side, and what the tool is not. */
static void section_summary (Page *pg);

static void
header (Page *pg)
{
  GString *h = pg->h;
  const CxrReportData *d = pg->d;
  const CxrPatientRow *p = &d->patient;
  g_autofree char *ep = esc (d->patient_id), *es = esc (p->sex ? p->sex : "unknown");
  GString *hashes = g_string_new (NULL);
  for (guint i = 0; i < d->films->len; i++)
    {
      const CxrReportFilm *f = &g_array_index (d->films, CxrReportFilm, i);
      if (f->sha256)
        g_string_append_printf (hashes, "%s%s %.16s", hashes->len ? ", " : "", f->image_index,
                                f->sha256);
    }
  g_autofree char *title = g_strdup_printf ("cxrtrack: patient %s", d->patient_id);
  page_head (h, title, page_scripts);
  g_string_append_printf (h, "<h1>Patient %s</h1><table>", ep);
  g_string_append_printf (h,
                          "<tr><td>sex</td><td>%s</td></tr><tr><td>films</td><td>%d (%d frontal, "
                          "readable)</td></tr>",
                          es, p->n_scans, p->n_frontal);
  if (!isnan (p->first_age))
    g_string_append_printf (h, "<tr><td>age</td><td>%.0f to %.0f years</td></tr>", p->first_age,
                            p->last_age);
  g_string_append (h, "</table>");
  section_summary (pg);
  g_string_append (h, "<details><summary>Technical details (model, store, film hashes)</summary>"
                      "<table>");
  g_autofree char *emn = esc (d->model_name), *edb = esc (d->store_path), *eh = esc (hashes->str);
  g_autofree char *esha = esc (d->model_sha256);
  g_string_append_printf (h, "<tr><td>model</td><td>%s%s%.16s</td></tr>",
                          d->model_id ? emn : "none", d->model_id ? ", sha256 " : "",
                          d->model_id ? esha : "");
  g_string_append_printf (
      h,
      "<tr><td>cxrtrack</td><td>%s</td></tr><tr><td>database</td><td>%s"
      "</td></tr><tr><td>input films (sha256)</td><td class=\"muted\">%s</td></tr>"
      "</table></details>",
      CXR_VERSION, edb, eh);
  g_string_free (hashes, TRUE);
}

/* The findings of @beyond (rises first, then falls, each by its size in
 * limits), "rose A +0.2 (3.10x), B ...; fell C ..."; the rises alone
 * with @rises_only. */
static void
deltas_text (GString *h, const GArray *beyond, gboolean rises_only)
{
  for (guint q = 0; q < beyond->len; q++)
    {
      const CxrReportDelta *dl = &g_array_index (beyond, CxrReportDelta, q);
      if (rises_only && dl->delta < 0)
        break;
      gboolean first_fall
          = dl->delta < 0 && (q == 0 || g_array_index (beyond, CxrReportDelta, q - 1).delta >= 0);
      g_autofree char *fn = esc (dl->finding);
      const char *sep = q == 0 ? "" : first_fall ? "; " : ", ";
      const char *dir = q == 0 || first_fall ? (dl->delta < 0 ? "fell " : "rose ") : "";
      g_string_append_printf (h, "%s%s%s %+.3f (%.2f&times;)", sep, dir, fn, dl->delta,
                              dl->in_limits);
    }
}

/* What the flags cannot say: each change of view whose later film has
 * findings risen beyond their (same-view) limits. */
static void
cross_view_rises (Page *pg)
{
  GString *h = pg->h;
  const CxrReportData *d = pg->d;
  for (guint k = 0; k < d->pairs->len; k++)
    {
      const CxrReportPair *p = &g_array_index (d->pairs, CxrReportPair, k);
      const CxrReportFilm *f = d->pair_films->pdata[2 * k], *m = d->pair_films->pdata[2 * k + 1];
      if (!p->cross_view || !g_str_equal (p->kind, "previous") || p->beyond == NULL
          || p->beyond->len == 0 || g_array_index (p->beyond, CxrReportDelta, 0).delta < 0)
        continue;
      g_autofree char *ef = esc (f->view_kind), *em = esc (m->view_kind);
      g_string_append_printf (h,
                              "<div class=\"flag crossview\"><b>not compared by the flags</b> (%s"
                              " &rarr; %s, visits %d &rarr; %d): ",
                              ef, em, f->visit, m->visit);
      deltas_text (h, p->beyond, TRUE);
      g_string_append (h, ", each in units of its limit between films of one view. The flags"
                          " compare films of one view, and a change of view alone moves the"
                          " probabilities: look at these two films side by side.</div>");
    }
}

static void
section_summary (Page *pg)
{
  GString *h = pg->h;
  const CxrReportData *d = pg->d;
  g_string_append_printf (h, "<div class=\"summary v-%s\"><b>%s</b>", d->verdict,
                          verdict_text (d->verdict));
  for (guint i = 0; i < d->events->len && i < 6; i++)
    {
      const CxrReportEvent *e = &g_array_index (d->events, CxrReportEvent, i);
      g_string_append_printf (h, "<br>%s ",
                              g_str_equal (e->direction, "worse")    ? "Worse:"
                              : g_str_equal (e->direction, "better") ? "Better:"
                                                                     : "Changed:");
      event_signals (h, e, 4);
      g_string_append (h, ", ");
      event_when (h, d, e);
      g_string_append_printf (h, ": %s.", kind_text (e->kind));
    }
  if (d->events->len > 6)
    g_string_append_printf (h, "<br>%u more events below.", d->events->len - 6);
  /* the first event's two films, side by side */
  const CxrReportEvent *e = d->events->len ? &g_array_index (d->events, CxrReportEvent, 0) : NULL;
  const CxrReportFilm *a = e ? cxr__report_film_at (d, e->from_visit) : NULL;
  const CxrReportFilm *b = e ? cxr__report_film_at (d, e->to_visit) : NULL;
  if (a && b && a != b)
    {
      g_string_append (h, "<div class=\"strip\">");
      const CxrReportFilm *two[] = { a, b };
      for (int k = 0; k < 2; k++)
        {
          g_autoptr (CxrImage) im = film_image (pg, two[k]);
          g_autofree char *when = cxr__report_when (d, two[k]->visit);
          g_autofree char *ew = esc (when);
          g_string_append (h, "<figure>");
          if (im)
            thumb (h, im, 220);
          if (g_str_has_prefix (when, "visit "))
            g_string_append_printf (h, "<figcaption>%s</figcaption></figure>", ew);
          else
            g_string_append_printf (h, "<figcaption>%s, visit %d</figcaption></figure>", ew,
                                    two[k]->visit);
        }
      g_string_append (h, "</div>");
    }
  g_string_append (
      h, "<p class=\"muted\">cxrtrack supports a radiologist's read; it does not"
         " replace it and is not a diagnosis. Its classifier was trained on 968 NIH"
         " films (mean held-out AUROC 0.758); its Brixia estimate agrees with a senior"
         " radiologist at Spearman 0.65-0.68 on patients it never saw (a junior"
         " radiologist: 0.885). The model cards (models/*_CARD.md, installed beside the"
         " models) give their data, figures and failure modes. " CXR_REPORT_DETECTION_LIMITS
         "</p></div>");
}

static void
section_flags (Page *pg)
{
  GString *h = pg->h;
  const CxrReportData *d = pg->d;
  g_string_append (h, "<h2>Events</h2>");
  for (guint k = 0; k < d->events->len; k++)
    {
      const CxrReportEvent *e = &g_array_index (d->events, CxrReportEvent, k);
      const char *kind = cxr_trend_kind_name (e->kind);
      g_string_append_printf (h, "<div class=\"flag %s\"><b>%s</b> ", kind,
                              g_str_equal (e->direction, "worse")    ? "Worse"
                              : g_str_equal (e->direction, "better") ? "Better"
                                                                     : "Changed");
      event_when (h, d, e);
      g_string_append_printf (h, ": %s. ", kind_text (e->kind));
      event_signals (h, e, 8);
      g_string_append_printf (h,
                              ".<details><summary>the evidence of each of its %u signal%s"
                              " (limits, tests, films)</summary>",
                              e->flags->len, e->flags->len == 1 ? "" : "s");
      for (guint i = 0; i < e->flags->len; i++)
        {
          const CxrFlagRow *fl = e->flags->pdata[i];
          g_autofree char *ev = esc (fl->evidence), *es = esc (fl->signal);
          g_string_append_printf (h, "<p><code>%s</code> (%s): %s.</p>", es, kind, ev);
        }
      g_string_append (h, "</details>Films:");
      const CxrFlagRow *fl = e->flags->pdata[0];
      for (guint i = 0; i < d->films->len; i++)
        {
          const CxrReportFilm *f = &g_array_index (d->films, CxrReportFilm, i);
          /* the films it was judged on: readable, of its view */
          if (f->visit >= fl->first_visit && f->visit <= fl->last_visit
              && g_str_equal (f->view_kind, fl->view_kind) && g_str_equal (f->status, "ok"))
            g_string_append_printf (h, " <a href=\"#film-%" G_GINT64_FORMAT "\">%d</a>", f->scan_id,
                                    f->visit);
        }
      g_string_append (h, "</div>");
    }
  if (d->events->len == 0)
    g_string_append (h, "<p>No progression flags.</p>");
  cross_view_rises (pg);
}

/* A film's six Brixia zones as the film shows them: the patient's right
 * lung (A, B, C) on the left, each cell coloured from pale (0) to red (3)
 * with its score written in it, and the global under them. */
static void
zone_grid (GString *h, const CxrReportFilm *f)
{
  if (f->severity_status == NULL)
    return;
  gboolean ok = g_str_equal (f->severity_status, "ok");
  g_string_append_printf (
      h,
      "<table class=\"bx%s\" title=\"Brixia zones, cxrtrack's estimate (0 clear"
      " - 3 alveolar predominance); A-C the patient's right lung, D-F the left%s"
      "\">",
      ok ? "" : " bx-no", ok ? "" : "; zones implausible: not used");
  for (int row = 0; row < 3; row++)
    {
      g_string_append (h, "<tr>");
      for (int side = 0; side < 2; side++)
        {
          int z = side * 3 + row;
          double s = CLAMP (f->zone_score[z], 0.0, 3.0);
          /* the page's policy allows no inline style: one class per half
           * grade, z0 (pale) to z6 (red) */
          g_string_append_printf (h, "<td class=\"z%d\">%c %.1f</td>", (int) lround (2 * s),
                                  "ABCDEF"[z], s);
        }
      g_string_append (h, "</tr>");
    }
  g_string_append_printf (h, "</table><span class=\"muted\">Brixia %.1f / 18%s</span><br>",
                          f->severity_global, ok ? "" : " (implausible)");
}

static void
section_films (Page *pg)
{
  GString *h = pg->h;
  const CxrReportData *d = pg->d;
  g_string_append (h, "<h2>Films</h2><div class=\"strip\">");
  for (guint i = 0; i < d->films->len; i++)
    {
      const CxrReportFilm *f = &g_array_index (d->films, CxrReportFilm, i);
      g_autofree char *ei = esc (f->image_index), *el = esc (f->labels);
      g_string_append_printf (h, "<figure id=\"film-%" G_GINT64_FORMAT "\">", f->scan_id);
      g_autoptr (CxrImage) im = film_image (pg, f);
      g_autoptr (CxrImage) lm = im ? lung_mask (pg, f) : NULL;
      /* a film never read (missing, invalid) is its caption alone: a series
       * of which most films are missing stays a page, not a wall of grey */
      if ((im == NULL || !thumb_outlined (h, im, lm, 150)) && g_str_equal (f->status, "ok"))
        g_string_append (h, "<div class=\"ph\"></div>");
      g_string_append_printf (h, "<figcaption>visit %d", f->visit);
      if (f->study_date && *f->study_date)
        {
          g_autofree char *ed = esc (f->study_date);
          g_string_append_printf (h, ", %.10s", ed);
        }
      else if (!isnan (f->day))
        g_string_append_printf (h, ", day %.0f",
                                f->day - g_array_index (d->films, CxrReportFilm, 0).day);
      g_autofree char *evk = esc (f->view_kind), *es = esc (f->status);
      g_autofree char *evp = esc (f->view_position ? f->view_position : f->view_kind);
      g_string_append_printf (h, " <span class=\"badge b-%s\">%s</span>", evk, evp);
      if (!g_str_equal (f->status, "ok"))
        g_string_append_printf (h, " <span class=\"badge b-%s\">%s</span>", es, es);
      if (f->upside_down)
        g_string_append (h, " <span class=\"badge b-invalid\">stored upside down: its pairs"
                            " are not registered</span>");
      if (g_hash_table_contains (pg->changed, GINT_TO_POINTER (f->scan_id)))
        g_string_append (h, " <span class=\"badge b-changed\">file changed since ingest: "
                            "not shown</span>");
      g_string_append (h, "<br>");
      zone_grid (h, f);
      g_string_append_printf (h, "%s<br><span class=\"muted\">%s</span></figcaption></figure>", ei,
                              el);
    }
  g_string_append (h, "</div>");
}

static void
section_trends (Page *pg)
{
  GString *h = pg->h;
  const CxrReportData *d = pg->d;
  for (guint k = 0; k < d->trend_sets->len; k++)
    {
      const CxrReportTrendSet *set = d->trend_sets->pdata[k];
      g_string_append_printf (h, "<h2 id=\"trends-%s\">Trends (%s films, time axis: %s)</h2>",
                              set->view, set->view, set->time_axis);
      if (set->n < 5)
        g_string_append_printf (
            h,
            "<p class=\"muted\">%d usable %s films: too few for a trend test (it needs 5 to"
            " reach p &lt; 0.05); a change is flagged only as a step beyond the acute limit, or as"
            " one that stays beyond the limit over the films that follow.</p>",
            set->n, set->view);
      g_string_append (h, "<p class=\"muted\">Grey band: the signal's limit around the first"
                          " film (what re-posed copies of a film, or this store's visits, move it"
                          " by); dotted: the acute step; every probability on one scale. Red rings:"
                          " the films a flag rests on.</p><div class=\"plots\">");
      /* one scale for every probability of the set */
      double fam_hi = 0;
      for (guint i = 0; i < set->trends->len; i++)
        {
          const CxrReportTrend *tr = set->trends->pdata[i];
          for (int j = 0; tr->signal->one_scale && j < set->n; j++)
            fam_hi = MAX (fam_hi, tr->y[j] + (isnan (tr->limit) || j ? 0 : tr->limit));
        }
      for (guint i = 0; i < set->trends->len; i++)
        svg_plot (h, set, set->trends->pdata[i], fam_hi);
      g_string_append (h, "</div>");
    }
}

/* The colour overlay of a pair's map on its earlier film, at most 256 px
 * wide (each 2x2 block of the 512-px map averaged). */
static void
overlay_figure (GString *out, const CxrImage *fixed, const float *map, int w, int h, double t,
                gboolean outline)
{
  g_autofree guint8 *rgb = cxr_diff_render_overlay (fixed, map, w, h, t, outline);
  int f = MAX (1, w / 256), tw = w / f, th = h / f;
  g_autofree guint8 *small = g_new (guint8, (gsize) 3 * tw * th);
  for (int y = 0; y < th; y++)
    for (int x = 0; x < tw; x++)
      for (int c = 0; c < 3; c++)
        {
          int sum = 0;
          for (int dy = 0; dy < f; dy++)
            for (int dx = 0; dx < f; dx++)
              sum += rgb[3 * ((gsize) (y * f + dy) * w + x * f + dx) + c];
          small[3 * ((gsize) y * tw + x) + c] = (guint8) ((sum + f * f / 2) / (f * f));
        }
  g_autoptr (GBytes) png = cxr_image_encode_png8 (small, tw, th, 3, 6, NULL);
  if (png == NULL)
    return;
  g_string_append (out, "<figure><img alt=\"difference\" width=\"220\" src=\"");
  data_uri (out, png);
  /* the colour scale: grey up to the threshold, full colour at 3x */
  g_string_append_printf (
      out,
      "\"><figcaption>change beyond the pair's noise<br>"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"220\" height=\"24\">"
      "<rect x=\"0\" y=\"0\" width=\"55\" height=\"10\" fill=\"#1a26ff\"/>"
      "<rect x=\"55\" y=\"0\" width=\"55\" height=\"10\" fill=\"#8a8a8a\"/>"
      "<rect x=\"110\" y=\"0\" width=\"55\" height=\"10\" fill=\"#8a8a8a\"/>"
      "<rect x=\"165\" y=\"0\" width=\"55\" height=\"10\" fill=\"#ff261a\"/>"
      "<text x=\"0\" y=\"21\" font-size=\"8\">-%.3f</text>"
      "<text x=\"55\" y=\"21\" font-size=\"8\" text-anchor=\"middle\">-%.3f</text>"
      "<text x=\"110\" y=\"21\" font-size=\"8\" text-anchor=\"middle\">0</text>"
      "<text x=\"165\" y=\"21\" font-size=\"8\" text-anchor=\"middle\">+%.3f</text>"
      "<text x=\"220\" y=\"21\" font-size=\"8\" text-anchor=\"end\">+%.3f</text></svg>"
      "<br><span class=\"muted\">grey-level change (0 black, 1 white): blue darker now, red"
      " brighter now; grey within &plusmn;%.3f, the pair's noise threshold</span></figcaption>"
      "</figure>",
      3 * t, t, t, 3 * t, t);
}

/* One pair's pictures: the earlier film, the later film aligned to it, and
 * the colour overlay of what changed. */
static void
pair_figures (Page *pg, const CxrReportPair *p, const CxrReportFilm *f, const CxrReportFilm *m)
{
  GString *h = pg->h;
  g_autoptr (CxrImage) fim = film_image (pg, f);
  g_autoptr (CxrImage) mim = fim ? film_image (pg, m) : NULL;
  if (fim && mim)
    {
      g_autoptr (CxrImage) flm = lung_mask (pg, f);
      g_string_append (h, "<figure>");
      thumb_outlined (h, fim, flm, 220);
      g_string_append (h, "<figcaption>earlier</figcaption></figure>");
      if (g_strcmp0 (p->status, "failed") != 0)
        {
          CxrRegistration r = p->reg;
          r.status = CXR_REGISTER_OK;
          g_autoptr (CxrImage) w = cxr_register_warp (mim, &r, fim->width, fim->height);
          g_string_append (h, "<figure>");
          thumb_outlined (h, w, flm, 220); /* the earlier film's lungs, for comparison */
          g_string_append (h, "<figcaption>later, aligned</figcaption></figure>");
        }
      else
        {
          g_string_append (h, "<figure>");
          thumb (h, mim, 220);
          g_string_append (
              h, "<figcaption>later, not aligned (registration failed)</figcaption></figure>");
        }
    }
  else if (g_hash_table_contains (pg->changed, GINT_TO_POINTER (f->scan_id))
           || g_hash_table_contains (pg->changed, GINT_TO_POINTER (m->scan_id)))
    g_string_append (h, "<p class=\"warn\">A film of this pair changed since it was ingested: "
                        "not shown.</p>");
  if (p->overlay_missing)
    {
      g_autofree char *eo = esc (p->overlay_path);
      g_string_append_printf (h,
                              "<p class=\"warn\">The difference map %s is missing from the "
                              "store's artifacts folder (was the store copied without it?)</p>",
                              eo);
      return;
    }
  g_autoptr (GBytes) ov = cxr__report_artifact (pg->d, p->overlay_path, NULL);
  if (ov && !isnan (p->map_scale))
    {
      /* the map: the overlay drawn from it on the earlier film */
      int mw, mh;
      g_autofree float *map
          = fim ? cxr_diff_decode_map (p->overlay_path, g_bytes_get_data (ov, NULL),
                                       g_bytes_get_size (ov), p->map_scale, &mw, &mh, NULL)
                : NULL;
      if (map)
        overlay_figure (h, fim, map, mw, mh, p->threshold, p->outline);
      return;
    }
  /* an overlay of an older store, shown as it is: only if it is a PNG */
  if (ov && g_bytes_get_size (ov) > 8
      && memcmp (g_bytes_get_data (ov, NULL), "\x89PNG\r\n\x1a\n", 8) == 0)
    {
      g_string_append (h, "<figure><img alt=\"difference\" width=\"220\" src=\"");
      data_uri (h, ov);
      g_string_append (h, "\"><figcaption>change</figcaption></figure>");
    }
}

/* Whether pair @k of @d has the same two films as another pair of @d
 * (the second film's previous film is the baseline: its previous and
 * baseline registrations are one comparison). */
static gboolean
pair_repeated (const CxrReportData *d, guint k)
{
  const CxrReportFilm *f = d->pair_films->pdata[2 * k], *m = d->pair_films->pdata[2 * k + 1];
  for (guint j = 0; j < d->pairs->len; j++)
    if (j != k && d->pair_films->pdata[2 * j] == f && d->pair_films->pdata[2 * j + 1] == m)
      return TRUE;
  return FALSE;
}

static void
section_pairs (Page *pg)
{
  GString *h = pg->h;
  const CxrReportData *d = pg->d;
  g_string_append (h, "<h2>Registered pairs</h2><p class=\"muted\">Each film against the previous "
                      "frontal film and against the baseline: the earlier film, the later film "
                      "aligned to it, and what changed (red: brighter now, blue: darker). "
                      "<b>Confidence</b> is the chance that the two films are aligned (no double "
                      "outline of the lungs, domes, heart or ribs), calibrated on real pairs "
                      "graded by eye: of pairs at 0.8, about 8 in 10 were aligned. "
                      "<b>ok</b>: a confidence of 0.5 or more and lung fields that overlap by "
                      "0.90 or more; <b>low_confidence</b>: registered and compared, but check "
                      "the films; <b>failed</b>: not compared.</p>");
  for (guint k = 0; k < d->pairs->len; k++)
    {
      const CxrReportPair *p = &g_array_index (d->pairs, CxrReportPair, k);
      const CxrReportFilm *f = d->pair_films->pdata[2 * k], *m = d->pair_films->pdata[2 * k + 1];
      /* the same two films as previous and as baseline: shown once */
      gboolean twice = pair_repeated (d, k);
      if (twice && g_str_equal (p->kind, "baseline"))
        continue;
      g_autofree char *fi = esc (f->image_index), *mi = esc (m->image_index), *er = esc (p->reason);
      g_autofree char *ek = twice ? g_strdup ("previous and baseline") : esc (p->kind);
      g_autofree char *es = esc (p->status);
      g_string_append_printf (h,
                              "<div class=\"pair\"><div><b>%s</b>: visit %d &rarr; %d<br>"
                              "<a href=\"#film-%" G_GINT64_FORMAT "\">%s</a> &rarr; "
                              "<a href=\"#film-%" G_GINT64_FORMAT "\">%s</a><br>"
                              "<span class=\"badge b-%s\">%s</span>%s<br>",
                              ek, f->visit, m->visit, f->scan_id, fi, m->scan_id, mi, es, es,
                              p->cross_view ? " <span class=\"badge b-cross\">cross-view</span>"
                                            : "");
      g_string_append_printf (h,
                              "shift (%.1f, %.1f) px, %.2f&deg;, scale %.3f, confidence %.2f<br>",
                              p->reg.dx_px, p->reg.dy_px, p->reg.angle_deg, p->reg.scale,
                              isnan (p->confidence) ? 0.0 : p->confidence);
      if (p->reason)
        g_string_append_printf (h, "<span class=\"muted\">%s</span><br>", er);
      if (!isnan (p->change_score))
        {
          g_string_append_printf (h, "change score %.0f", p->change_score);
          if (!isnan (p->changed_area_mm2))
            g_string_append_printf (h, ", changed area %.0f mm&sup2;", p->changed_area_mm2);
          g_string_append (h, "<br>");
        }
      if (p->prob_finding && !isnan (p->prob_change_limits))
        {
          g_autofree char *fn = esc (p->prob_finding);
          g_string_append_printf (
              h, "largest probability change: %s %+.3f, %.1f&times; its limit%s%s", fn,
              p->prob_delta, p->prob_change_limits, p->prob_change_limits > 1 ? "" : " (within it)",
              p->cross_view ? " (the limits are for films of one view)" : "");
        }
      if (p->beyond && p->beyond->len > 0)
        {
          g_string_append (h, "<br>beyond their limits: ");
          deltas_text (h, p->beyond, FALSE);
        }
      g_string_append (h, "</div>");
      pair_figures (pg, p, f, m);
      g_string_append (h, "</div>");
    }
}

/**
 * cxr__report_html:
 * @stats: the missing maps and changed films found are added to it
 *
 * Returns: (transfer full): the patient's page.
 */
GString *
cxr__report_html (const CxrReportData *d, CxrReportStats *stats)
{
  Page pg = { g_string_new (NULL), d, g_hash_table_new (g_direct_hash, g_direct_equal) };
  header (&pg);
  section_flags (&pg);
  section_films (&pg);
  section_trends (&pg);
  section_pairs (&pg);
  g_string_append_printf (pg.h, "<p class=\"muted\">cxrtrack %s</p>%s</body></html>\n", CXR_VERSION,
                          self_check);
  stats->n_missing_artifacts += cxr__report_missing_maps (d);
  stats->n_changed_films += g_hash_table_size (pg.changed);
  g_hash_table_unref (pg.changed);
  return pg.h;
}

/**
 * cxr__report_index_html:
 * Returns: (transfer full): the cohort index: counts, the patients
 * (CxrIndexRow, linked to their pages) and the findings (CxrFindingCount).
 */
GString *
cxr__report_index_html (int n_patients, int n_films, int n_flagged, const GArray *rows,
                        const GArray *findings)
{
  GString *h = g_string_new (NULL);
  page_head (h, "cxrtrack: cohort", index_scripts);
  g_string_append (h, "<h1>Cohort</h1>");
  g_string_append_printf (h, "<p>%d patients, %d films, %d flagged.</p>", n_patients, n_films,
                          n_flagged);
  g_string_append (h, "<h2>Patients (click a column to sort)</h2><table><thead><tr><th>patient</th>"
                      "<th>films</th><th>frontal</th><th>flags</th><th>strongest</th><th>min p</th>"
                      "<th>signals</th></tr></thead><tbody>");
  for (guint k = 0; k < rows->len; k++)
    {
      const CxrIndexRow *r = &g_array_index (rows, CxrIndexRow, k);
      g_autofree char *ep = esc (r->patient_id), *es = esc (r->signals);
      g_autofree char *estr = esc (r->strongest);
      if (r->has_pairs)
        {
          g_autofree char *page = cxr_report_page_name (r->patient_id, CXR_REPORT_HTML);
          g_autofree char *href = g_uri_escape_string (page, NULL, FALSE);
          g_string_append_printf (h, "<tr><td><a href=\"%s\">%s</a></td>", href, ep);
        }
      else
        g_string_append_printf (h, "<tr><td>%s</td>", ep);
      char pv[32] = "";
      if (!isnan (r->min_p))
        g_snprintf (pv, sizeof pv, "%.3g", r->min_p);
      g_string_append_printf (
          h,
          "<td>%d</td><td>%d</td><td>%d</td><td>%s</td><td data-v=\"%g\">%s</td>"
          "<td>%s</td></tr>",
          r->n_scans, r->n_frontal, r->n_flags, estr, isnan (r->min_p) ? 2.0 : r->min_p, pv, es);
    }
  g_string_append (
      h,
      "</tbody></table><h2>Findings (labels in the metadata; flags)</h2><table><thead>"
      "<tr><th>finding</th><th>films labelled</th><th>patients flagged</th></tr></thead><tbody>");
  for (guint k = 0; k < findings->len; k++)
    {
      const CxrFindingCount *c = &g_array_index (findings, CxrFindingCount, k);
      g_autofree char *ef = esc (c->finding);
      g_string_append_printf (h, "<tr><td>%s</td><td>%d</td><td>%d</td></tr>", ef, c->n_films,
                              c->n_flagged);
    }
  g_string_append_printf (h,
                          "</tbody></table><p class=\"muted\">cxrtrack %s</p>%s%s</body></html>\n",
                          CXR_VERSION, sorter, self_check);
  return h;
}
