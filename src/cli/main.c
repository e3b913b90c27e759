/* SPDX-License-Identifier: MIT
 *
 * cxrtrack: the command-line tool over libcxr. A table of subcommands;
 * each lives in cmd_<name>.c with its own GOptionContext. Exit status:
 * 0 ok, 1 failure, 2 usage.
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cxr-config.h"

#include "cli.h"
#include "cxr/cxr.h"

static const struct {
  const char *name;
  const char *args;
  const char *summary;
  CxrCommandFn fn;
  const char *examples; /* for COMMAND --help, `help COMMAND` and the man page */
} commands[] = {
  { "ingest",
    "--db DB (--nih CSV | --manifest CSV | --dicom DIR | --dicomweb URL | --folder DIR) "
    "[--images DIR]... [--shard K/N]",
    "store patients, scans and findings; validate image files", cmd_ingest,
    "  cxrtrack ingest --db nih.sqlite --nih Data_Entry_2017.csv --images images/\n"
    "  cxrtrack ingest --db my.sqlite --manifest films.csv   # patient_id,path,study_date,...\n"
    "  cxrtrack ingest --db my.sqlite --dicom /data/export/\n"
    "  cxrtrack ingest --db my.sqlite --dicomweb http://pacs:8042/dicom-web --auth-file pacs.auth\n"
    "  cxrtrack ingest --db my.sqlite --folder films/   # films/PATIENT/2021-03-04_AP.png\n" },
  { "analyze", "--db DB [--jobs N] [--shard K/N]",
    "register, score and compare every pending film and pair, then flag progression", cmd_analyze,
    "  cxrtrack analyze --db my.sqlite\n"
    "  cxrtrack analyze --db shard-2.sqlite --shard 2/4 --no-flags   # one machine's part\n" },
  { "calibrate", "--db DB [--force | --limits-from STORE]",
    "derive (or copy) the test-retest limits the flags are judged against", cmd_calibrate,
    "  cxrtrack calibrate --db my.sqlite --force\n"
    "  cxrtrack calibrate --db small.sqlite --limits-from cohort.sqlite\n" },
  { "merge", "--db OUT SHARD.sqlite...",
    "merge shard stores, then derive limits and flags over the whole cohort", cmd_merge,
    "  cxrtrack merge --db cohort.sqlite shard-1.sqlite shard-2.sqlite shard-3.sqlite\n" },
  { "predict", "--model FILE [--embedding] [--format csv|json] FILM.png...",
    "finding probabilities (and embeddings) of films", cmd_predict,
    "  cxrtrack predict --format json film.png\n" },
  { "lungs", "FILM.png --out MASK.png [--format json]",
    "the lung fields of a film: a mask, their areas, quality and status", cmd_lungs,
    "  cxrtrack lungs film.png --out mask.png --format json\n" },
  { "severity", "FILM... [--format text|json]",
    "the Brixia score of films: six lung zones 0-3 and the global 0-18", cmd_severity,
    "  cxrtrack severity film.png --format json\n"
    "  cxrtrack severity --features a.png b.dcm > features.jsonl   # what a head is fitted on\n" },
  { "register", "FIXED.png MOVING.png [--out WARPED.png] [--format json]",
    "align MOVING to FIXED: shift, rotation, scale, confidence", cmd_register,
    "  cxrtrack register earlier.png later.png --out warped.png --format json\n" },
  { "report",
    "--db DB (--patient ID | --all [--flagged] [--jobs N]) --out DIR [--format html|json]",
    "per-patient change reports and the cohort index", cmd_report,
    "  cxrtrack report --db my.sqlite --patient 1543 --out report/\n"
    "  cxrtrack report --db my.sqlite --all --flagged --out report/\n"
    "  cxrtrack report --db my.sqlite --patient 1543 --out report/ --format json\n" },
  { "push", "--db DB --dicomweb URL (--patient ID | --all | --flagged) [--auth-file FILE]",
    "send each comparison back to the PACS: a DICOM SR and a change overlay in the film's study",
    cmd_push,
    "  cxrtrack push --db pacs.sqlite --dicomweb http://pacs:8042/dicom-web --all --auth-file pacs.auth\n"
    "  cxrtrack push --db pacs.sqlite --dicomweb http://pacs:8042/dicom-web --patient 1543\n" },
  { "watch", "--db DB --dicomweb URL [--interval S] [--auth-file FILE] [--polls N]",
    "follow a PACS: pull new films, analyze them, push their comparisons; again every S seconds",
    cmd_watch,
    "  cxrtrack watch --db pacs.sqlite --dicomweb http://pacs:8042/dicom-web --auth-file pacs.auth\n"
    "  cxrtrack watch --db pacs.sqlite --dicomweb http://pacs:8042/dicom-web --polls 1   # cron\n" },
  { "sql", "--db DB [--format table|csv|json] 'SELECT ...'",
    "run a query against the store (read-only unless --write)", cmd_sql,
    "  cxrtrack sql --db my.sqlite 'SELECT patient_id, count(*) FROM scans GROUP BY 1'\n"
    "  cxrtrack sql --db my.sqlite --format csv 'SELECT * FROM scan_severity'\n" },
};

/**
 * cli_describe:
 * Puts @command's examples, then @notes (nullable), under its --help.
 */
void
cli_describe (GOptionContext *ctx, const char *command, const char *notes)
{
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (commands[i].name, command))
      {
        g_autofree char *d = g_strdup_printf ("Examples:\n%s%s%s", commands[i].examples,
                                              notes ? "\n" : "", notes ? notes : "");
        g_option_context_set_description (ctx, d);
        return;
      }
  g_option_context_set_description (ctx, notes);
}

static void
usage (FILE *f)
{
  fprintf (f, "cxrtrack %s: follow a patient's chest X-rays over time\n\nUsage:\n", cxr_version ());
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (f, "  cxrtrack %s %s\n      %s\n", commands[i].name, commands[i].args,
             commands[i].summary);
  fprintf (f, "\n'cxrtrack help COMMAND' (or COMMAND --help) describes a command's options, with"
              " examples.\n");
}

char *
cli_join_argv (int argc, char **argv)
{
  GString *s = g_string_new ("cxrtrack");
  for (int i = 0; i < argc; i++)
    {
      g_autofree char *q = g_shell_quote (argv[i]);
      g_string_append_c (s, ' ');
      g_string_append (s, strpbrk (argv[i], " \t'\"$\\|&;<>*?") ? q : argv[i]);
    }
  return g_string_free (s, FALSE);
}

int
cli_usage_error (GOptionContext *ctx, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  fprintf (stderr, "cxrtrack: %s\n", msg);
  if (ctx)
    {
      g_autofree char *help = g_option_context_get_help (ctx, TRUE, NULL);
      fputs (help, stderr);
    }
  return CXR_EXIT_USAGE;
}

int
cli_fail (GError *error)
{
  fprintf (stderr, "cxrtrack: %s\n", error ? error->message : "failed");
  return CXR_EXIT_FAILURE;
}

void
cli_progress_init (CliProgress *p, const char *what)
{
  p->enabled = isatty (STDERR_FILENO) && g_getenv ("CXR_NO_PROGRESS") == NULL;
  p->start_us = g_get_monotonic_time ();
  p->what = what;
}

void
cli_progress_show (CliProgress *p, guint64 done, double fraction, const char *extra)
{
  if (!p->enabled)
    return;
  double t = (g_get_monotonic_time () - p->start_us) / 1e6;
  double rate = t > 0 ? done / t : 0;
  char eta[32] = "--";
  if (fraction > 0.01 && fraction < 1.0)
    {
      int s = (int) (t / fraction - t);
      g_snprintf (eta, sizeof eta, "%d:%02d", s / 60, s % 60);
    }
  fprintf (stderr, "\r  %" G_GUINT64_FORMAT " %s  %.0f/s  %3.0f%%  ETA %s  %s\033[K", done, p->what,
           rate, 100 * fraction, eta, extra ? extra : "");
  fflush (stderr);
}

/* @limits with the window --voi names (defaults when NULL); FALSE: a bad
 * name. */
gboolean
cli_limits_voi (const char *voi, CxrImageLimits *limits)
{
  static const CxrImageLimits defaults = CXR_IMAGE_LIMITS_DEFAULT;
  *limits = defaults;
  return voi == NULL || cxr_voi_parse (voi, &limits->voi);
}

/* @shard from --shard (the whole cohort when @text is NULL); FALSE with
 * *@rc set after a usage error. */
gboolean
cli_shard (GOptionContext *ctx, const char *text, CxrShard *shard, int *rc)
{
  g_autoptr (GError) error = NULL;
  shard->k = shard->n = 0;
  if (text == NULL || cxr_shard_parse (text, shard, &error))
    return TRUE;
  *rc = cli_usage_error (ctx, "--shard: %s", error->message);
  return FALSE;
}

void
cli_dicomweb_init (CliDicomweb *d)
{
  memset (d, 0, sizeof *d);
  d->timeout_s = 60;
}

/* Checks the PACS options and reads the credentials; FALSE with *@rc set. */
gboolean
cli_dicomweb_check (GOptionContext *ctx, CliDicomweb *d, int *rc)
{
  g_autoptr (GError) error = NULL;
  if (!(d->timeout_s > 0))
    {
      *rc = cli_usage_error (ctx, "--timeout must be positive");
      return FALSE;
    }
  if (d->auth_file && (d->auth = cxr_dicomweb_auth_read (d->auth_file, &error)) == NULL)
    {
      *rc = cli_fail (error);
      return FALSE;
    }
  if (d->auth == NULL)
    d->auth = g_strdup (g_getenv ("CXRTRACK_DICOMWEB_AUTH"));
  return TRUE;
}

void
cli_dicomweb_clear (CliDicomweb *d)
{
  g_free (d->auth_file);
  g_free (d->cacert);
  if (d->auth)
    memset (d->auth, 0, strlen (d->auth));
  g_free (d->auth);
  memset (d, 0, sizeof *d);
}

void
cli_progress_end (CliProgress *p)
{
  if (p->enabled)
    fputs ("\r\033[K", stderr);
}

/* A default file: $@env when set (@empty_is_none: set but empty means
 * none), else, for the installed cxrtrack, the installed copy, then the
 * one in the source tree this binary was built from, and for a cxrtrack
 * in its build tree the other way round (an older install must not
 * shadow the files it is built and tested with); NULL when none exists. */
static char *
default_file (const char *env, gboolean empty_is_none, const char *installed, const char *source)
{
  const char *v = g_getenv (env);
  if (v && (*v || empty_is_none))
    return *v ? g_strdup (v) : NULL;
  gboolean inst = cxr_running_installed ();
  const char *paths[] = { inst ? installed : source, inst ? source : installed };
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    if (g_file_test (paths[i], G_FILE_TEST_IS_REGULAR))
      return g_strdup (paths[i]);
  return NULL;
}

/* The classifier used without --model: $CXRTRACK_MODEL, else
 * models/cxr-default.safetensors. Returns: (transfer full) (nullable). */
char *
cli_default_model (void)
{
  return default_file ("CXRTRACK_MODEL", FALSE, CXR_MODEL_INSTALLED, CXR_MODEL_SOURCE);
}

/* The lung segmenter used without --lung-model: $CXRTRACK_LUNG_MODEL,
 * else models/cxr-lungs.safetensors. */
char *
cli_default_lung_model (void)
{
  return default_file ("CXRTRACK_LUNG_MODEL", FALSE, CXR_LUNG_MODEL_INSTALLED,
                       CXR_LUNG_MODEL_SOURCE);
}

/* The zone-score head used without --severity-model:
 * $CXRTRACK_SEVERITY_MODEL, else models/cxr-severity.safetensors. */
char *
cli_default_severity_model (void)
{
  return default_file ("CXRTRACK_SEVERITY_MODEL", FALSE, CXR_SEVERITY_MODEL_INSTALLED,
                       CXR_SEVERITY_MODEL_SOURCE);
}

/* The reference test-retest limits: $CXRTRACK_REFERENCE_LIMITS (empty:
 * none), else models/reference-limits.csv. */
char *
cli_default_reference_limits (void)
{
  return default_file ("CXRTRACK_REFERENCE_LIMITS", TRUE, CXR_REFERENCE_LIMITS_INSTALLED,
                       CXR_REFERENCE_LIMITS_SOURCE);
}

/* "cxrtrack COMMAND", as a command's --help names it (GLib takes argv[0]
 * otherwise) */
static void
set_prgname (const char *command)
{
  g_autofree char *name = g_strdup_printf ("cxrtrack %s", command);
  g_set_prgname (name);
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  cxr_tune_allocator ();
  cxr_tune_threads ();
  /* help COMMAND: that command's --help */
  if (argc >= 3 && g_str_equal (argv[1], "help"))
    {
      for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
        if (g_str_equal (argv[2], commands[i].name))
          {
            char *av[] = { argv[2], (char *) "--help", NULL };
            set_prgname (commands[i].name);
            return commands[i].fn (2, av);
          }
      fprintf (stderr, "cxrtrack: no command '%s'\n\n", argv[2]);
      usage (stderr);
      return CXR_EXIT_USAGE;
    }
  if (argc < 2 || g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h")
      || g_str_equal (argv[1], "help"))
    {
      usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? CXR_EXIT_USAGE : CXR_EXIT_OK;
    }
  if (g_str_equal (argv[1], "--version") || g_str_equal (argv[1], "version"))
    {
      printf ("cxrtrack %s\n", cxr_version ());
      return CXR_EXIT_OK;
    }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (argv[1], commands[i].name))
      {
        set_prgname (commands[i].name);
        return commands[i].fn (argc - 1, argv + 1);
      }
  fprintf (stderr, "cxrtrack: unknown command '%s'\n\n", argv[1]);
  usage (stderr);
  return CXR_EXIT_USAGE;
}
