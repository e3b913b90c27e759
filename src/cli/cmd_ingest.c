/* SPDX-License-Identifier: MIT
 *
 * cxrtrack ingest: NIH metadata or a manifest, plus image folders, a
 * folder of DICOM files, the films of a PACS over DICOMweb, or a folder of
 * PNG/JPEG films per patient, into the store; progress on a terminal, a
 * summary at the end.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cxr/cxr.h"

static void
progress_cb (const CxrIngestSummary *s, double fraction, gpointer data)
{
  char extra[128];
  g_snprintf (extra, sizeof extra,
              "ok %" G_GUINT64_FORMAT "  missing %" G_GUINT64_FORMAT "  invalid %" G_GUINT64_FORMAT,
              s->n_ok, s->n_missing, s->n_invalid);
  cli_progress_show (data, s->n_rows, fraction, extra);
}

static gboolean
parse_map (GHashTable *map, const char *spec, GError **error)
{
  g_auto (GStrv) pairs = g_strsplit (spec, ",", -1);
  for (char **p = pairs; *p; p++)
    {
      char *eq = strchr (*p, '=');
      if (eq == NULL || eq == *p || eq[1] == '\0')
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                       "--map wants FIELD=COLUMN[,FIELD=COLUMN...], got '%s'", *p);
          return FALSE;
        }
      g_hash_table_insert (map, g_strndup (*p, (gsize) (eq - *p)), g_strdup (eq + 1));
    }
  return TRUE;
}

static void
print_summary (const CxrIngestSummary *s, CxrStore *store, gboolean dicomweb)
{
  if (s->run_id > 0)
    printf ("ingest: %" G_GUINT64_FORMAT " rows in %.2f s (run %" G_GINT64_FORMAT ")\n", s->n_rows,
            s->elapsed_s, s->run_id);
  else
    printf ("ingest: %" G_GUINT64_FORMAT " rows in %.2f s (no run recorded)\n", s->n_rows,
            s->elapsed_s);
  if (dicomweb)
    printf ("  dicomweb: %" G_GUINT64_FORMAT " studies, %" G_GUINT64_FORMAT
            " films fetched, %" G_GUINT64_FORMAT " already stored (not fetched), %" G_GUINT64_FORMAT
            " failed%s\n",
            s->n_studies, s->n_fetched, s->n_known, s->n_fetch_failed,
            s->n_fetch_failed ? " (below; a later run fetches them)" : "");
  printf ("  ok %" G_GUINT64_FORMAT ", missing %" G_GUINT64_FORMAT ", invalid %" G_GUINT64_FORMAT
          ", unchanged %" G_GUINT64_FORMAT ", rejected rows %" G_GUINT64_FORMAT
          ", conflicts %" G_GUINT64_FORMAT "\n",
          s->n_ok, s->n_missing, s->n_invalid, s->n_unchanged, s->n_rejected, s->n_conflicts);
  if (s->n_other_shards)
    printf ("  rows of other shards' patients (not read) %" G_GUINT64_FORMAT "\n",
            s->n_other_shards);
  CxrStoreCounts c;
  if (cxr_store_counts (store, &c, NULL))
    printf ("  store %s: %" G_GINT64_FORMAT " patients (%" G_GINT64_FORMAT
            " with 2+ scans), %" G_GINT64_FORMAT " scans (%" G_GINT64_FORMAT " ok)\n",
            cxr_store_path (store), c.n_patients, c.n_patients_multi, c.n_scans, c.n_scans_ok);
  if (s->n_messages)
    {
      printf ("  %" G_GUINT64_FORMAT " problem%s", s->n_messages, s->n_messages == 1 ? "" : "s");
      if (s->n_messages > s->messages->len)
        printf (", the first %u", s->messages->len);
      printf (":\n");
      for (guint i = 0; i < s->messages->len; i++)
        printf ("    %s\n", (const char *) s->messages->pdata[i]);
    }
}

int
cmd_ingest (int argc, char **argv)
{
  g_autofree char *db = NULL, *nih = NULL, *manifest = NULL, *dicom = NULL, *folder = NULL;
  g_autofree char *prefix = NULL;
  g_autofree char *voi = NULL, *shard = NULL;
  g_autofree char *dicomweb = NULL, *since = NULL, *cache = NULL;
  g_auto (GStrv) images = NULL, maps = NULL, patients = NULL;
  g_auto (CliDicomweb) web;
  cli_dicomweb_init (&web);
  int jobs = 0, max_w = 8192, max_h = 8192;
  gboolean strict = FALSE, follow = FALSE;
  GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Store (created if absent)", "DB" },
    { "nih", 0, 0, G_OPTION_ARG_FILENAME, &nih, "NIH Data_Entry_2017.csv[.gz]", "CSV" },
    { "manifest", 0, 0, G_OPTION_ARG_FILENAME, &manifest, "Generic manifest CSV", "CSV" },
    { "dicom", 0, 0, G_OPTION_ARG_FILENAME, &dicom,
      "Folder of DICOM files (a PACS export), walked recursively", "DIR" },
    { "dicomweb", 0, 0, G_OPTION_ARG_STRING, &dicomweb,
      "A PACS's DICOMweb root (http://pacs:8042/dicom-web): its CR and DX studies' films "
      "not yet stored are fetched and stored as --dicom stores them",
      "URL" },
    CLI_DICOMWEB_ENTRIES (web),
    { "since", 0, 0, G_OPTION_ARG_STRING, &since, "--dicomweb: only studies from this date on",
      "YYYY-MM-DD" },
    { "patient", 0, 0, G_OPTION_ARG_STRING_ARRAY, &patients,
      "--dicomweb: only this Patient ID (repeatable)", "ID" },
    { "cache", 0, 0, G_OPTION_ARG_FILENAME, &cache,
      "--dicomweb: folder the films are fetched into (default: DB.dicomweb)", "DIR" },
    { "folder", 0, 0, G_OPTION_ARG_FILENAME, &folder,
      "Folder of PNG/JPEG films, one folder per patient, the date in each film's name or folder "
      "(DIR/PATIENT/2021-03-04_AP.png)",
      "DIR" },
    { "voi", 0, 0, G_OPTION_ARG_STRING, &voi,
      "DICOM window: first (default), none (the whole stored range) or auto (the film's range)",
      "first|none|auto" },
    { "images", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &images,
      "Folder searched recursively for image files (repeatable)", "DIR" },
    { "map", 0, 0, G_OPTION_ARG_STRING_ARRAY, &maps,
      "Manifest column names: FIELD=COLUMN[,...] e.g. patient_id=patientid", "MAP" },
    { "patient-prefix", 0, 0, G_OPTION_ARG_STRING, &prefix,
      "Prefix for every patient_id (keeps archives apart)", "TEXT" },
    CLI_SHARD_ENTRY (shard),
    { "jobs", 'j', 0, G_OPTION_ARG_INT, &jobs, "Decoding threads (default: one per core)", "N" },
    { "max-width", 0, 0, G_OPTION_ARG_INT, &max_w, "Largest image width accepted (8192)", "PX" },
    { "max-height", 0, 0, G_OPTION_ARG_INT, &max_h, "Largest image height accepted (8192)", "PX" },
    { "follow-symlinks", 0, 0, G_OPTION_ARG_NONE, &follow,
      "Read films through symbolic links that lead out of the input folders", NULL },
    { "strict", 0, 0, G_OPTION_ARG_NONE, &strict,
      "Exit 1 if any row was rejected, any file was invalid or conflicting, or any film could not be fetched",
      NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- store scans and validate images");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (ctx, "ingest", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *cmdline = cli_join_argv (argc, argv);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (db == NULL)
    return cli_usage_error (ctx, "ingest needs --db");
  if ((nih != NULL) + (manifest != NULL) + (dicom != NULL) + (folder != NULL) + (dicomweb != NULL)
      != 1)
    return cli_usage_error (
        ctx, "ingest needs exactly one of --nih, --manifest, --dicom, --dicomweb and --folder");
  if ((dicom || folder) && images)
    return cli_usage_error (ctx, "--images applies to --nih and --manifest; --%s walks its folder",
                            dicom ? "dicom" : "folder");
  if (dicomweb && images)
    return cli_usage_error (ctx, "--images applies to --nih and --manifest, not --dicomweb");
  if (!dicomweb && (web.auth_file || web.cacert || since || patients || cache))
    return cli_usage_error (
        ctx, "--auth-file, --cacert, --since, --patient and --cache apply to --dicomweb");
  if (argc > 1)
    return cli_usage_error (ctx, "unexpected argument '%s'", argv[1]);
  if (max_w <= 0 || max_h <= 0)
    return cli_usage_error (ctx, "--max-width and --max-height must be positive");

  CxrIngestOptions opt;
  cxr_ingest_options_init (&opt);
  opt.image_roots = (const char *const *) images;
  opt.n_roots = images ? g_strv_length (images) : 0;
  opt.jobs = jobs;
  opt.argv = cmdline;
  opt.patient_prefix = prefix;
  opt.follow_symlinks = follow;
  opt.limits.max_width = (guint32) max_w;
  opt.limits.max_height = (guint32) max_h;
  if (voi && !cxr_voi_parse (voi, &opt.limits.voi))
    return cli_usage_error (ctx, "--voi wants first, none or auto, got '%s'", voi);
  g_autoptr (GHashTable) map = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (char **m = maps; m && *m; m++)
    if (!parse_map (map, *m, &error))
      return cli_usage_error (ctx, "%s", error->message);
  if (maps && nih)
    return cli_usage_error (ctx, "--map applies to --manifest only");
  opt.column_map = map;
  int rc = CXR_EXIT_OK;
  if (!cli_shard (ctx, shard, &opt.shard, &rc))
    return rc;
  if (dicomweb && !cli_dicomweb_check (ctx, &web, &rc))
    return rc;
  opt.dicomweb.auth = web.auth;
  opt.dicomweb.ca_file = web.cacert;
  opt.dicomweb.timeout_s = web.timeout_s;
  opt.dicomweb.since = since;
  opt.dicomweb.patients = (const char *const *) patients;
  opt.dicomweb.cache = cache;

  CliProgress prog;
  cli_progress_init (&prog, "rows");
  opt.progress = progress_cb;
  opt.progress_data = &prog;

  g_autoptr (CxrStore) store = cxr_store_open (db, CXR_STORE_READ_WRITE, &error);
  if (store == NULL)
    return cli_fail (error);
  CxrIngestSummary sum;
  cxr_ingest_summary_init (&sum);
  gboolean ok = nih        ? cxr_ingest_nih (store, nih, &opt, &sum, &error)
                : manifest ? cxr_ingest_manifest (store, manifest, &opt, &sum, &error)
                : dicom    ? cxr_ingest_dicom (store, dicom, &opt, &sum, &error)
                : dicomweb ? cxr_ingest_dicomweb (store, dicomweb, &opt, &sum, &error)
                           : cxr_ingest_folder (store, folder, &opt, &sum, &error);
  cli_progress_end (&prog);
  /* after a fatal error, a summary only of rows that were read */
  if (ok || sum.n_rows > 0)
    print_summary (&sum, store, dicomweb != NULL);
  /* a folder walked that held no film of the kind asked for: say so */
  gboolean none = ok && sum.n_ok + sum.n_invalid + sum.n_unchanged + sum.n_conflicts == 0;
  const char *seen = sum.n_rows ? " (its files are listed above)" : ": it holds no file";
  if (none && dicom)
    fprintf (stderr,
             "ingest: no DICOM film in %s%s; PNG or JPEG films are ingested with --folder DIR"
             " or --manifest CSV (README, \"Your own films\")\n",
             dicom, seen);
  if (none && folder)
    fprintf (stderr,
             "ingest: no PNG or JPEG film in a patient's folder under %s%s; the layout is "
             "DIR/PATIENT/2021-03-04_AP.png (README, \"Your own films\"); DICOM films are "
             "ingested with --dicom DIR\n",
             folder, seen);
  if (!ok)
    rc = cli_fail (error);
  else if (strict && (sum.n_rejected || sum.n_invalid || sum.n_conflicts || sum.n_fetch_failed))
    rc = CXR_EXIT_FAILURE;
  cxr_ingest_summary_clear (&sum);
  return rc;
}
