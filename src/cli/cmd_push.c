/* SPDX-License-Identifier: MIT
 *
 * cxrtrack push: each comparison back into the PACS its films came from,
 * as a DICOM SR and a Secondary Capture of the change overlay in the
 * film's study (src/pacs/push.c); a summary at the end.
 */
#include <stdio.h>

#include "cli.h"
#include "cxr/cxr.h"

int
cmd_push (int argc, char **argv)
{
  g_autofree char *db = NULL, *url = NULL, *shard = NULL;
  g_auto (GStrv) patients = NULL;
  gboolean all = FALSE, flagged = FALSE;
  g_auto (CliDicomweb) web;
  cli_dicomweb_init (&web);
  GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Store (analyzed)", "DB" },
    { "dicomweb", 0, 0, G_OPTION_ARG_STRING, &url,
      "The PACS's DICOMweb root (http://pacs:8042/dicom-web)", "URL" },
    { "patient", 0, 0, G_OPTION_ARG_STRING_ARRAY, &patients,
      "This patient's comparisons (repeatable; the store's patient_id)", "ID" },
    { "all", 0, 0, G_OPTION_ARG_NONE, &all, "Every patient with a comparison", NULL },
    { "flagged", 0, 0, G_OPTION_ARG_NONE, &flagged, "Every patient with a progression flag", NULL },
    CLI_DICOMWEB_ENTRIES (web),
    CLI_SHARD_ENTRY (shard),
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("- send comparisons back to a PACS as DICOM SR and overlays");
  g_option_context_add_main_entries (ctx, entries, NULL);
  cli_describe (ctx, "push",
                "Only films read from DICOM are sent (their study is where the results go); a\n"
                "film's objects keep their UIDs from one push to the next, so the PACS is sent\n"
                "only what it does not hold (docs/pacs.md).");
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage_error (ctx, "%s", error->message);
  if (db == NULL || url == NULL)
    return cli_usage_error (ctx, "push needs --db and --dicomweb");
  if ((patients != NULL) + (all || flagged) != 1)
    return cli_usage_error (ctx, "push needs --patient ID, --all or --flagged");
  if (argc > 1)
    return cli_usage_error (ctx, "unexpected argument '%s'", argv[1]);
  CxrPushOptions opt = { 0 };
  int rc = CXR_EXIT_OK;
  if (!cli_shard (ctx, shard, &opt.shard, &rc) || !cli_dicomweb_check (ctx, &web, &rc))
    return rc;
  opt.auth = web.auth;
  opt.timeout_s = web.timeout_s;
  opt.ca_file = web.cacert;
  opt.patients = (const char *const *) patients;
  opt.flagged = flagged;

  g_autoptr (CxrStore) store
      = cxr_store_open (db, CXR_STORE_READ_ONLY | CXR_STORE_NO_CREATE, &error);
  if (store == NULL)
    return cli_fail (error);
  CxrPushSummary sum;
  cxr_push_summary_init (&sum);
  gboolean ok = cxr_push (store, url, &opt, &sum, &error);
  printf ("push: %" G_GUINT64_FORMAT " films compared with a prior: %" G_GUINT64_FORMAT
          " objects sent, %" G_GUINT64_FORMAT " already in the PACS, %" G_GUINT64_FORMAT
          " failed; %" G_GUINT64_FORMAT " compared films not from DICOM (nothing to file into)\n",
          sum.n_films, sum.n_sent, sum.n_present, sum.n_failed, sum.n_not_dicom);
  if (sum.n_messages)
    {
      printf ("  %" G_GUINT64_FORMAT " problem%s%s:\n", sum.n_messages,
              sum.n_messages == 1 ? "" : "s",
              sum.n_messages > sum.messages->len ? ", the first ones" : "");
      for (guint i = 0; i < sum.messages->len; i++)
        printf ("    %s\n", (const char *) sum.messages->pdata[i]);
    }
  if (!ok)
    rc = cli_fail (error);
  else if (sum.n_failed)
    rc = CXR_EXIT_FAILURE;
  cxr_push_summary_clear (&sum);
  return rc;
}
