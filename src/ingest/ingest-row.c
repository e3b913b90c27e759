/* SPDX-License-Identifier: MIT
 *
 * Reading one row of a metadata CSV into a scan record: the NIH
 * Data_Entry_2017.csv and the generic manifest (docs/ingest.md, "Manifest format"),
 * each a table of column names for the canonical fields (--map renames a
 * manifest's); every field parsed strictly, a bad required field rejecting
 * the row and a bad optional one stored as NULL, both with a message that
 * names the file, line and column; and the image file a row names, found
 * relative to the manifest or by name under the image folders.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cxr/csv.h"
#include "cxr/error.h"
#include "ingest-private.h"
#include "util-private.h"

/* Manifest column names (the generic format, docs/ingest.md, "Manifest format"). */
static const char *const manifest_names[N_FIELDS] = {
  "image_index",
  "patient_id",
  "visit",
  "study_date",
  "day_offset",
  "age_years",
  "sex",
  "view_position",
  "finding_labels",
  "path",
  "orig_width",
  "orig_height",
  "orig_spacing_x_mm",
  "orig_spacing_y_mm",
  "pixel_spacing_mm",
};

/* NIH names; the size and spacing headers are split by their own commas
 * ("OriginalImage[Width,Height]"), so the second half is the next column. */
static const char *const nih_names[N_FIELDS] = {
  "Image Index",
  "Patient ID",
  "Follow-up #",
  NULL,
  NULL,
  "Patient Age",
  "Patient Gender",
  "View Position",
  "Finding Labels",
  NULL,
  "OriginalImage[Width",
  "Height]",
  "OriginalImagePixelSpacing[x",
  "y]",
  NULL,
};

/* --- parsing fields --------------------------------------------------- */

/**
 * cxr__ingest_view_kind:
 * Returns: "PA", "AP", "lateral" or "unknown" for a view position as
 * archives write it ("PA", "AP Supine", "L", "LL", "LATERAL", ...).
 */
const char *
cxr__ingest_view_kind (const char *v)
{
  if (v == NULL || *v == '\0')
    return "unknown";
  g_autofree char *u = g_ascii_strup (v, -1);
  g_strstrip (u);
  if (g_str_equal (u, "L") || g_str_equal (u, "LL") || g_str_equal (u, "RL")
      || g_str_has_prefix (u, "LAT"))
    return "lateral";
  if (g_str_has_prefix (u, "PA"))
    return "PA";
  if (g_str_has_prefix (u, "AP"))
    return "AP";
  return "unknown";
}

/**
 * cxr__ingest_parse_date:
 * Accepts YYYY-MM-DD (optionally followed by a time) and DICOM's
 * YYYYMMDD; writes the ISO date. Returns %FALSE for anything else,
 * including impossible dates such as 2019-02-30.
 */
gboolean
cxr__ingest_parse_date (const char *text, char out[11])
{
  int y, m, d;
  char tail;
  if (strlen (text) >= 10 && text[4] == '-' && text[7] == '-')
    {
      if (sscanf (text, "%4d-%2d-%2d%c", &y, &m, &d, &tail) < 3)
        return FALSE;
      if (text[10] != '\0' && text[10] != 'T' && text[10] != ' ')
        return FALSE;
    }
  else if (strlen (text) == 8 && strspn (text, "0123456789") == 8)
    {
      if (sscanf (text, "%4d%2d%2d", &y, &m, &d) != 3)
        return FALSE;
    }
  else
    return FALSE;
  if (y < 1800 || y > 9999 || !g_date_valid_dmy ((GDateDay) d, (GDateMonth) m, (GDateYear) y))
    return FALSE;
  g_snprintf (out, 11, "%04d-%02d-%02d", y, m, d);
  return TRUE;
}

/* The field's text, trimmed, or "" when the row is too short or the
 * source has no such column. Points into a scratch copy. */
static const char *
field (CxrRowReader *in, GPtrArray *row, Field f)
{
  int c = in->col[f];
  if (c < 0 || (guint) c >= row->len)
    return "";
  return g_strstrip ((char *) g_ptr_array_index (row, c));
}

static const char *
field_label (CxrRowReader *in, Field f)
{
  const char *const *names = in->nih ? nih_names : manifest_names;
  if (!in->nih && in->opt->column_map)
    {
      const char *mapped = g_hash_table_lookup (in->opt->column_map, manifest_names[f]);
      if (mapped)
        return mapped;
    }
  return names[f] ? names[f] : "?";
}

/* --- finding files ---------------------------------------------------- */

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

void
cxr__row_reader_index (CxrRowReader *in, const char *dir, int depth)
{
  if (depth > 32)
    return;
  GDir *d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    {
      cxr__ingest_note (in->sum, "%s: cannot read folder", dir);
      return;
    }
  /* Sorted, so a name found twice resolves the same way on every run. */
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *n;
  while ((n = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (n));
  g_dir_close (d);
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      g_autofree char *p = g_build_filename (dir, name, NULL);
      char *dot = strrchr (name, '.');
      gboolean film_name
          = dot
            && (g_ascii_strcasecmp (dot, ".png") == 0 || g_ascii_strcasecmp (dot, ".jpg") == 0
                || g_ascii_strcasecmp (dot, ".jpeg") == 0);
      if (g_file_test (p, G_FILE_TEST_IS_DIR))
        {
          if (!g_file_test (p, G_FILE_TEST_IS_SYMLINK))
            cxr__row_reader_index (in, p, depth + 1);
          /* a folder with a film's name is still that film's path, so that
           * its row says what is there instead of a bare 'missing' */
          if (!film_name)
            continue;
        }
      if (!film_name)
        continue;
      if (g_hash_table_contains (in->files, name))
        {
          cxr__ingest_note (in->sum, "%s: same file name also under %s; using the first", p,
                            (const char *) g_hash_table_lookup (in->files, name));
          continue;
        }
      g_hash_table_insert (in->files, g_strdup (name), g_steal_pointer (&p));
    }
  g_ptr_array_unref (names);
}

static char *
resolve_path (CxrRowReader *in, const char *given, const char *image_index)
{
  if (given && *given)
    {
      g_autofree char *p = g_path_is_absolute (given)
                               ? g_strdup (given)
                               : g_build_filename (in->base_dir, given, NULL);
      /* whatever is there (a folder, a FIFO): reading it says what it is */
      if (g_file_test (p, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&p);
      g_autofree char *base = g_path_get_basename (given);
      const char *found = g_hash_table_lookup (in->files, base);
      return found ? g_strdup (found) : NULL;
    }
  const char *found = g_hash_table_lookup (in->files, image_index);
  return found ? g_strdup (found) : NULL;
}

/* --- reading one row into a record ------------------------------------ */

/* Returns FALSE (row rejected, message noted) when the row cannot be stored. */
gboolean
cxr__row_reader_parse (CxrRowReader *in, GPtrArray *row, CxrScanRecord *r)
{
  const char *file = cxr_csv_reader_name (in->csv);
  guint line = cxr_csv_reader_line (in->csv);
  r->line = line;
  r->visit = -1;
  r->day_offset = r->age_years = r->orig_sx = r->orig_sy = r->spacing = NAN;
  r->orig_w = r->orig_h = -1;

  /* A short row: the first absent column decides how we report it. */
  for (int f = 0; f < N_FIELDS; f++)
    if ((f == F_IMAGE_INDEX && in->nih) || f == F_PATIENT_ID)
      if (in->col[f] >= 0 && (guint) in->col[f] >= row->len)
        {
          cxr__ingest_note (in->sum, "%s:%u: row has %u fields; '%s' is missing", file, line,
                            row->len, field_label (in, (Field) f));
          return FALSE;
        }

  const char *pid = field (in, row, F_PATIENT_ID);
  if (*pid == '\0')
    {
      cxr__ingest_note (in->sum, "%s:%u: '%s' is empty", file, line,
                        field_label (in, F_PATIENT_ID));
      return FALSE;
    }
  r->patient_id = g_strconcat (in->opt->patient_prefix ? in->opt->patient_prefix : "", pid, NULL);

  const char *given_path = field (in, row, F_PATH);
  const char *idx = field (in, row, F_IMAGE_INDEX);
  if (*idx)
    r->image_index = g_strdup (idx);
  else if (!in->nih && *given_path)
    r->image_index = g_path_get_basename (given_path);
  else
    {
      cxr__ingest_note (in->sum, "%s:%u: '%s' is empty", file, line,
                        field_label (in, in->nih ? F_IMAGE_INDEX : F_PATH));
      return FALSE;
    }

  const char *v = field (in, row, F_VISIT);
  if (*v && !cxr__parse_int (v, &r->visit))
    {
      cxr__ingest_note (in->sum, "%s:%u: '%s' is not a number: '%s'", file, line,
                        field_label (in, F_VISIT), v);
      return FALSE;
    }
  if (in->nih && r->visit < 0)
    {
      cxr__ingest_note (in->sum, "%s:%u: '%s' is %s", file, line, field_label (in, F_VISIT),
                        *v ? "negative" : "empty");
      return FALSE;
    }
  const char *date = field (in, row, F_STUDY_DATE);
  if (*date)
    {
      char iso[11];
      if (!cxr__ingest_parse_date (date, iso))
        {
          cxr__ingest_note (in->sum, "%s:%u: '%s' is not an ISO 8601 date: '%s'", file, line,
                            field_label (in, F_STUDY_DATE), date);
          return FALSE;
        }
      r->study_date = g_strdup (iso);
    }
  const char *off = field (in, row, F_DAY_OFFSET);
  if (*off && !cxr__parse_double (off, &r->day_offset))
    {
      cxr__ingest_note (in->sum, "%s:%u: '%s' is not a number: '%s'", file, line,
                        field_label (in, F_DAY_OFFSET), off);
      return FALSE;
    }
  if (!in->nih && r->study_date == NULL && r->visit < 0 && isnan (r->day_offset))
    cxr__ingest_note (in->sum,
                      "%s:%u: no study date, day offset or visit for '%s': ordered by name", file,
                      line, r->image_index);

  /* Optional fields: a bad value is stored as NULL, with a note. */
  const char *age = field (in, row, F_AGE);
  if (*age)
    {
      g_autofree char *a = g_strdup (age);
      gsize n = strlen (a);
      if (n > 1 && (a[n - 1] == 'Y' || a[n - 1] == 'y')) /* DICOM style "058Y" */
        a[n - 1] = '\0';
      double years;
      if (!cxr__parse_double (a, &years) || years < 0 || years > 130)
        cxr__ingest_note (in->sum, "%s:%u: '%s' is not a plausible age: '%s' (stored as NULL)",
                          file, line, field_label (in, F_AGE), age);
      else
        r->age_years = years;
    }
  const char *sex = field (in, row, F_SEX);
  if (*sex)
    {
      if (g_ascii_strcasecmp (sex, "M") == 0 || g_ascii_strcasecmp (sex, "male") == 0)
        r->sex = g_strdup ("M");
      else if (g_ascii_strcasecmp (sex, "F") == 0 || g_ascii_strcasecmp (sex, "female") == 0)
        r->sex = g_strdup ("F");
      else
        r->sex = g_ascii_strup (sex, -1);
    }
  const char *view = field (in, row, F_VIEW);
  r->view_position = *view ? g_strdup (view) : NULL;
  const char *labels = field (in, row, F_LABELS);
  r->labels = *labels ? g_strdup (labels) : NULL;

  struct {
    Field f;
    gint64 *i;
    double *d;
  } opt[] = {
    { F_ORIG_W, &r->orig_w, NULL },     { F_ORIG_H, &r->orig_h, NULL },
    { F_SPACING_X, NULL, &r->orig_sx }, { F_SPACING_Y, NULL, &r->orig_sy },
    { F_SPACING, NULL, &r->spacing },
  };
  for (guint k = 0; k < G_N_ELEMENTS (opt); k++)
    {
      const char *t = field (in, row, opt[k].f);
      if (*t == '\0')
        continue;
      gboolean ok = opt[k].i ? cxr__parse_int (t, opt[k].i) && *opt[k].i > 0
                             : cxr__parse_double (t, opt[k].d) && *opt[k].d > 0;
      if (!ok)
        {
          if (opt[k].i)
            *opt[k].i = -1;
          else
            *opt[k].d = NAN;
          cxr__ingest_note (in->sum, "%s:%u: '%s' is not a positive number: '%s' (stored as NULL)",
                            file, line, field_label (in, opt[k].f), t);
        }
    }

  r->path = resolve_path (in, given_path, r->image_index);
  return TRUE;
}

gboolean
cxr__row_reader_map_columns (CxrRowReader *in, GPtrArray *header, GError **error)
{
  const char *file = cxr_csv_reader_name (in->csv);
  for (int f = 0; f < N_FIELDS; f++)
    {
      in->col[f] = -1;
      const char *name = in->nih ? nih_names[f] : manifest_names[f];
      if (name == NULL)
        continue;
      if (!in->nih && in->opt->column_map)
        {
          const char *mapped = g_hash_table_lookup (in->opt->column_map, name);
          if (mapped)
            {
              in->col[f] = cxr_csv_find_column (header, mapped);
              if (in->col[f] < 0)
                {
                  g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                               "%s:1: no column '%s' (mapped to %s)", file, mapped, name);
                  return FALSE;
                }
              continue;
            }
        }
      in->col[f] = cxr_csv_find_column (header, name);
    }
  if (in->nih)
    {
      /* Older exports name the split halves differently; fall back to
       * position: width then height, spacing x then y. */
      if (in->col[F_ORIG_H] < 0 && in->col[F_ORIG_W] >= 0)
        in->col[F_ORIG_H] = in->col[F_ORIG_W] + 1;
      if (in->col[F_SPACING_Y] < 0 && in->col[F_SPACING_X] >= 0)
        in->col[F_SPACING_Y] = in->col[F_SPACING_X] + 1;
      Field req[] = { F_IMAGE_INDEX, F_PATIENT_ID, F_VISIT };
      for (guint k = 0; k < G_N_ELEMENTS (req); k++)
        if (in->col[req[k]] < 0)
          {
            g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                         "%s:1: no '%s' column; is this the NIH Data_Entry_2017.csv?", file,
                         nih_names[req[k]]);
            return FALSE;
          }
    }
  else
    {
      Field req[] = { F_PATIENT_ID, F_PATH };
      for (guint k = 0; k < G_N_ELEMENTS (req); k++)
        if (in->col[req[k]] < 0)
          {
            g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                         "%s:1: no '%s' column (a manifest needs patient_id, path and one of "
                         "study_date, day_offset, visit)",
                         file, field_label (in, req[k]));
            return FALSE;
          }
      if (in->col[F_STUDY_DATE] < 0 && in->col[F_DAY_OFFSET] < 0 && in->col[F_VISIT] < 0)
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                       "%s:1: no study_date, day_offset or visit column: visit order unknown",
                       file);
          return FALSE;
        }
    }
  return TRUE;
}
