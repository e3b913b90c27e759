/* SPDX-License-Identifier: MIT
 *
 * The JSON renderer of a patient's report: the same content as the HTML
 * page (report-html.c), without the pictures; artifact paths as stored.
 */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "cxr-config.h"
#include "cxr/cxr.h"
#include "report-private.h"

static void
add_string_or_null (JsonBuilder *jb, const char *name, const char *v)
{
  json_builder_set_member_name (jb, name);
  if (v)
    json_builder_add_string_value (jb, v);
  else
    json_builder_add_null_value (jb);
}

static void
add_double_or_null (JsonBuilder *jb, const char *name, double v)
{
  json_builder_set_member_name (jb, name);
  if (isnan (v))
    json_builder_add_null_value (jb);
  else
    json_builder_add_double_value (jb, v);
}

static void
flags (JsonBuilder *jb, const CxrReportData *d)
{
  json_builder_set_member_name (jb, "flags");
  json_builder_begin_array (jb);
  for (guint k = 0; k < d->flags->len; k++)
    {
      const CxrFlagRow *f = &g_array_index (d->flags, CxrFlagRow, k);
      json_builder_begin_object (jb);
      add_string_or_null (jb, "signal", f->signal);
      add_string_or_null (jb, "view_kind", f->view_kind);
      add_string_or_null (jb, "kind", cxr_trend_kind_name (f->kind));
      add_string_or_null (jb, "evidence", f->evidence);
      add_double_or_null (jb, "p_value", f->p_value); /* fewer than 3 films: no test */
      json_builder_end_object (jb);
    }
  json_builder_end_array (jb);
}

/* The summary: the verdict, and each event with its signals, zones,
 * dates, visits, and the limit and p-value of its first signal (the
 * strongest: flags come worsening first, by p-value), then every signal's
 * own in details. */
static void
summary (JsonBuilder *jb, const CxrReportData *d)
{
  json_builder_set_member_name (jb, "summary");
  json_builder_begin_object (jb);
  add_string_or_null (jb, "verdict", d->verdict);
  add_string_or_null (jb, "detection_limits", CXR_REPORT_DETECTION_LIMITS);
  json_builder_set_member_name (jb, "events");
  json_builder_begin_array (jb);
  for (guint i = 0; i < d->events->len; i++)
    {
      const CxrReportEvent *e = &g_array_index (d->events, CxrReportEvent, i);
      const CxrFlagRow *first = e->flags->pdata[0];
      json_builder_begin_object (jb);
      add_string_or_null (jb, "kind", cxr_trend_kind_name (e->kind));
      add_string_or_null (jb, "direction", e->direction);
      add_string_or_null (jb, "view", e->view);
      json_builder_set_member_name (jb, "signals");
      json_builder_begin_array (jb);
      for (guint k = 0; k < e->flags->len; k++)
        json_builder_add_string_value (jb, ((const CxrFlagRow *) e->flags->pdata[k])->signal);
      json_builder_end_array (jb);
      json_builder_set_member_name (jb, "zones");
      json_builder_begin_array (jb);
      for (guint k = 0; k < e->flags->len; k++)
        {
          const char *s = ((const CxrFlagRow *) e->flags->pdata[k])->signal;
          if (g_str_has_prefix (s, "severity:") && strlen (s) == 10)
            json_builder_add_string_value (jb, s + 9);
        }
      json_builder_end_array (jb);
      g_autofree char *from = cxr__report_when (d, e->from_visit);
      g_autofree char *to = cxr__report_when (d, e->to_visit);
      const CxrReportFilm *ff = cxr__report_film_at (d, e->from_visit);
      const CxrReportFilm *tf = cxr__report_film_at (d, e->to_visit);
      add_string_or_null (jb, "from_date", ff && ff->study_date ? from : NULL);
      add_string_or_null (jb, "to_date", tf && tf->study_date ? to : NULL);
      add_string_or_null (jb, "from", from);
      add_string_or_null (jb, "to", to);
      json_builder_set_member_name (jb, "visits");
      json_builder_begin_array (jb);
      json_builder_add_int_value (jb, e->from_visit);
      json_builder_add_int_value (jb, e->to_visit);
      json_builder_end_array (jb);
      add_double_or_null (jb, "limit", first->retest_limit);
      add_string_or_null (jb, "limit_source", first->limit_source);
      add_double_or_null (jb, "p", first->p_value);
      json_builder_set_member_name (jb, "details");
      json_builder_begin_array (jb);
      for (guint k = 0; k < e->flags->len; k++)
        {
          const CxrFlagRow *f = e->flags->pdata[k];
          json_builder_begin_object (jb);
          add_string_or_null (jb, "signal", f->signal);
          add_double_or_null (jb, "limit", f->retest_limit);
          add_string_or_null (jb, "limit_source", f->limit_source);
          add_double_or_null (jb, "p", f->p_value);
          add_string_or_null (jb, "evidence", f->evidence);
          json_builder_end_object (jb);
        }
      json_builder_end_array (jb);
      json_builder_end_object (jb);
    }
  json_builder_end_array (jb);
  json_builder_end_object (jb);
}

static void
films (JsonBuilder *jb, const CxrReportData *d)
{
  json_builder_set_member_name (jb, "films");
  json_builder_begin_array (jb);
  for (guint i = 0; i < d->films->len; i++)
    {
      const CxrReportFilm *f = &g_array_index (d->films, CxrReportFilm, i);
      json_builder_begin_object (jb);
      add_string_or_null (jb, "image_index", f->image_index);
      add_string_or_null (jb, "view_kind", f->view_kind);
      add_string_or_null (jb, "status", f->status);
      add_string_or_null (jb, "finding_labels", f->labels);
      add_string_or_null (jb, "sha256", f->sha256);
      add_string_or_null (jb, "error", f->error);
      add_string_or_null (jb, "study_date", f->study_date);
      json_builder_set_member_name (jb, "visit");
      json_builder_add_int_value (jb, f->visit);
      json_builder_set_member_name (jb, "upside_down");
      json_builder_add_boolean_value (jb, f->upside_down);
      /* its Brixia score, as `cxrtrack severity` prints one, or null */
      json_builder_set_member_name (jb, "severity");
      if (f->severity_status == NULL)
        json_builder_add_null_value (jb);
      else
        {
          json_builder_begin_object (jb);
          json_builder_set_member_name (jb, "zones");
          json_builder_begin_object (jb);
          for (int z = 0; z < 6; z++)
            {
              char name[2] = { "ABCDEF"[z], 0 };
              json_builder_set_member_name (jb, name);
              json_builder_add_double_value (jb, f->zone_score[z]);
            }
          json_builder_end_object (jb);
          json_builder_set_member_name (jb, "global");
          json_builder_add_double_value (jb, f->severity_global);
          add_string_or_null (jb, "status", f->severity_status);
          json_builder_end_object (jb);
        }
      json_builder_end_object (jb);
    }
  json_builder_end_array (jb);
}

/* A trend set as an object: its view, time axis and a value per film of
 * each signal. */
static void
trend_set (JsonBuilder *jb, const CxrReportTrendSet *set)
{
  json_builder_begin_object (jb);
  add_string_or_null (jb, "view", set->view);
  add_string_or_null (jb, "time_axis", set->time_axis);
  json_builder_set_member_name (jb, "visits");
  json_builder_begin_array (jb);
  for (int i = 0; i < set->n; i++)
    json_builder_add_int_value (jb, set->visits[i]);
  json_builder_end_array (jb);
  for (guint k = 0; k < set->trends->len; k++)
    {
      const CxrReportTrend *tr = set->trends->pdata[k];
      json_builder_set_member_name (jb, tr->signal->name);
      json_builder_begin_array (jb);
      for (int i = 0; i < set->n; i++)
        json_builder_add_double_value (jb, tr->y[i]);
      json_builder_end_array (jb);
    }
  json_builder_end_object (jb);
}

/* "trends": the more frequent view's set; "other_view_trends": the other
 * view's, where it has one. */
static void
trends (JsonBuilder *jb, const CxrReportData *d)
{
  static const char *const names[] = { "trends", "other_view_trends" };
  for (guint k = 0; k < d->trend_sets->len && k < G_N_ELEMENTS (names); k++)
    {
      json_builder_set_member_name (jb, names[k]);
      trend_set (jb, d->trend_sets->pdata[k]);
    }
}

static void
pairs (JsonBuilder *jb, const CxrReportData *d)
{
  json_builder_set_member_name (jb, "pairs");
  json_builder_begin_array (jb);
  for (guint k = 0; k < d->pairs->len; k++)
    {
      const CxrReportPair *p = &g_array_index (d->pairs, CxrReportPair, k);
      const CxrReportFilm *f = d->pair_films->pdata[2 * k], *m = d->pair_films->pdata[2 * k + 1];
      json_builder_begin_object (jb);
      add_string_or_null (jb, "kind", p->kind);
      add_string_or_null (jb, "fixed", f->image_index);
      add_string_or_null (jb, "moving", m->image_index);
      const char *names[] = { "dx_px",      "dy_px",        "angle_deg",       "scale",
                              "confidence", "change_score", "changed_area_mm2" };
      double vals[] = { p->reg.dx_px,  p->reg.dy_px,    p->reg.angle_deg,   p->reg.scale,
                        p->confidence, p->change_score, p->changed_area_mm2 };
      for (guint q = 0; q < G_N_ELEMENTS (names); q++)
        add_double_or_null (jb, names[q], vals[q]);
      add_string_or_null (jb, "status", p->status);
      add_string_or_null (jb, "probability_change_finding", p->prob_finding);
      add_double_or_null (jb, "probability_change_delta", p->prob_delta);
      add_double_or_null (jb, "probability_change_in_limits", p->prob_change_limits);
      json_builder_set_member_name (jb, "probability_changes_beyond_limits");
      json_builder_begin_array (jb);
      for (guint q = 0; p->beyond && q < p->beyond->len; q++)
        {
          const CxrReportDelta *dl = &g_array_index (p->beyond, CxrReportDelta, q);
          json_builder_begin_object (jb);
          add_string_or_null (jb, "finding", dl->finding);
          add_double_or_null (jb, "delta", dl->delta);
          add_double_or_null (jb, "in_limits", dl->in_limits);
          json_builder_end_object (jb);
        }
      json_builder_end_array (jb);
      json_builder_set_member_name (jb, "cross_view");
      json_builder_add_boolean_value (jb, p->cross_view);
      add_string_or_null (jb, "overlay", p->overlay_path);
      json_builder_end_object (jb);
    }
  json_builder_end_array (jb);
}

/**
 * cxr__report_json:
 * Returns: (transfer full): the patient's report as pretty-printed JSON.
 */
char *
cxr__report_json (const CxrReportData *d)
{
  g_autoptr (JsonBuilder) jb = json_builder_new ();
  json_builder_begin_object (jb);
  const char *k[]
      = { "patient_id", "sex", "cxrtrack_version", "database", "model", "model_sha256" };
  const char *v[] = { d->patient_id, d->patient.sex, CXR_VERSION,
                      d->store_path, d->model_name,  d->model_sha256 };
  for (guint i = 0; i < G_N_ELEMENTS (k); i++)
    add_string_or_null (jb, k[i], v[i]);
  summary (jb, d);
  flags (jb, d);
  films (jb, d);
  trends (jb, d);
  pairs (jb, d);
  json_builder_end_object (jb);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (jb);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  return cxr_json_shorten_numbers (text);
}
