/* SPDX-License-Identifier: MIT
 *
 * The folder source of ingest (cxrtrack ingest --folder DIR): PNG and JPEG
 * films laid out one folder per patient, the date in each film's path, so
 * that a folder of films becomes a store without a hand-written manifest.
 *
 *   DIR/PATIENT/2021-03-04.png              one film per date
 *   DIR/PATIENT/2021-03-04_AP.png           the view as a word of the name
 *   DIR/PATIENT/20210304/film.jpg           the date in a folder, DICOM's form
 *
 *   - the patient is the first folder below DIR (with --patient-prefix);
 *     a film directly in DIR belongs to no patient and is not stored;
 *   - the date is the first YYYY-MM-DD or YYYYMMDD (a run of exactly 8
 *     digits, a real calendar date) in the file's name, else in the folders
 *     between it and the patient's, nearest first. Visit order comes from
 *     it and from nothing else in the name (the brief's rule: never a file
 *     name's counter); a film without one is stored invalid with that
 *     reason, counted but never compared, and two films of one date are
 *     ordered by their paths;
 *   - the view is a word of the file's name (split at anything not a
 *     letter or digit): PA, AP, LL, LAT or LATERAL; else unknown;
 *   - a film's identity (scans.image_index) is its path below DIR, so the
 *     same folder ingested again stores nothing twice, and two patients'
 *     "film.png" stay two films;
 *   - files that are not films by their first bytes (the format table of
 *     image-format.c: PNG, JPEG) are not stored, each reported with its
 *     path (a DICOM file with the hint to use --dicom).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "image-private.h"
#include "ingest-private.h"

struct _CxrFolderWalker {
  char *root; /* canonical, no trailing '/' */
  CxrFileWalker *files;
};

CxrFolderWalker *
cxr__folder_walker_new (const char *root)
{
  CxrFolderWalker *w = g_new0 (CxrFolderWalker, 1);
  w->root = g_canonicalize_filename (root, NULL);
  w->files = cxr__file_walker_new (w->root);
  return w;
}

void
cxr__folder_walker_free (CxrFolderWalker *w)
{
  if (w == NULL)
    return;
  cxr__file_walker_free (w->files);
  g_free (w->root);
  g_free (w);
}

/* The first date in @s (see the file's head), as ISO into @out. */
static gboolean
find_date (const char *s, char out[11])
{
  gsize n = strlen (s);
  for (gsize i = 0; i < n; i++)
    {
      if (!isdigit ((unsigned char) s[i]) || (i > 0 && isdigit ((unsigned char) s[i - 1])))
        continue;
      gsize run = strspn (s + i, "0123456789");
      char buf[11];
      if (run == 8)
        {
          memcpy (buf, s + i, 8);
          buf[8] = '\0';
          if (cxr__ingest_parse_date (buf, out))
            return TRUE;
        }
      else if (run == 4 && i + 10 <= n && s[i + 4] == '-' && s[i + 7] == '-'
               && strspn (s + i + 5, "0123456789") == 2 && strspn (s + i + 8, "0123456789") == 2
               && (i + 10 == n || !isdigit ((unsigned char) s[i + 10])))
        {
          memcpy (buf, s + i, 10);
          buf[10] = '\0';
          if (cxr__ingest_parse_date (buf, out))
            return TRUE;
        }
      i += run - 1;
    }
  return FALSE;
}

/* The view named by a word of @stem, or NULL. */
static const char *
find_view (const char *stem)
{
  static const char *const words[][2] = {
    { "PA", "PA" }, { "AP", "AP" }, { "LL", "LL" }, { "LAT", "LL" }, { "LATERAL", "LL" },
  };
  g_autofree char *u = g_ascii_strup (stem, -1);
  for (char *p = u; *p; p++)
    if (!isalnum ((unsigned char) *p))
      *p = ' ';
  g_auto (GStrv) tok = g_strsplit (u, " ", -1);
  for (char **t = tok; *t; t++)
    for (guint k = 0; k < G_N_ELEMENTS (words); k++)
      if (g_str_equal (*t, words[k][0]))
        return words[k][1];
  return NULL;
}

/* The format the file's first bytes say it is (image-format.c), or NULL. */
static const CxrImageFormat *
sniff (const char *path)
{
  guint8 head[132];
  FILE *f = g_fopen (path, "rb");
  if (f == NULL)
    return NULL;
  gsize n = fread (head, 1, sizeof head, f);
  fclose (f);
  return cxr__image_format_sniff (head, n);
}

/* The record of the film at @path (a CxrFileReader). */
static gboolean
read_film (gpointer data, const char *path, const CxrIngestOptions *opt, CxrScanRecord *r,
           char **why_invalid, char **refused)
{
  CxrFolderWalker *w = data;
  r->visit = r->orig_w = r->orig_h = -1;
  r->day_offset = r->age_years = r->orig_sx = r->orig_sy = r->spacing = NAN;
  gsize nr = strlen (w->root);
  const char *rel = path + nr + (nr > 1); /* the walker's paths all begin with the root */
  g_auto (GStrv) parts = g_strsplit (rel, G_DIR_SEPARATOR_S, -1);
  guint np = g_strv_length (parts);
  if (np < 2)
    {
      *refused
          = g_strdup_printf ("%s: not in a patient's folder (DIR/PATIENT/...), not stored", path);
      return FALSE;
    }
  const CxrImageFormat *format = sniff (path);
  if (format == NULL)
    {
      *refused = g_strdup_printf ("%s: not a PNG or JPEG film, not stored", path);
      return FALSE;
    }
  if (format->elsewhere)
    {
      *refused = g_strdup_printf ("%s: a %s file: %s, not stored", path, format->name,
                                  format->elsewhere);
      return FALSE;
    }
  char iso[11];
  gboolean dated = FALSE;
  for (guint k = np - 1; k >= 1 && !dated; k--)
    dated = find_date (parts[k], iso);
  g_autofree char *stem = g_strdup (parts[np - 1]);
  char *dot = strrchr (stem, '.');
  if (dot)
    *dot = '\0';
  r->image_index = g_strdup (rel);
  r->patient_id = g_strconcat (opt->patient_prefix ? opt->patient_prefix : "", parts[0], NULL);
  r->view_position = g_strdup (find_view (stem));
  r->path = g_strdup (path);
  if (dated)
    r->study_date = g_strdup (iso);
  else
    *why_invalid = g_strdup_printf ("%s: no date (YYYY-MM-DD or YYYYMMDD) in its name or its "
                                    "folders below the patient's: cannot be placed in visit "
                                    "order, stored invalid",
                                    path);
  return TRUE;
}

/**
 * cxr__folder_walker_next:
 * @r: (out): the next film's record
 * @why_invalid: (out): set when the film is to be stored invalid, with why
 *
 * Returns: %FALSE when the walk is over. Files that are not stored are
 * counted as rows and rejected, and noted with their path and reason.
 */
gboolean
cxr__folder_walker_next (CxrFolderWalker *w, const CxrIngestOptions *opt, CxrIngestSummary *sum,
                         CxrScanRecord *r, char **why_invalid)
{
  return cxr__file_walker_next_record (w->files, read_film, w, opt, sum, r, why_invalid);
}
