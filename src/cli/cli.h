/* SPDX-License-Identifier: MIT
 *
 * What the subcommands share: exit codes, the command line for the runs
 * table, and terminal progress.
 */
#pragma once

#include <glib.h>

#include "cxr/image.h"
#include "cxr/lungs.h"
#include "cxr/model.h"
#include "cxr/pipeline.h"
#include "cxr/severity.h"
#include "cxr/shard.h"

#define CXR_EXIT_OK      0
#define CXR_EXIT_FAILURE 1
#define CXR_EXIT_USAGE   2

typedef int (*CxrCommandFn) (int argc, char **argv);

int cmd_ingest (int argc, char **argv);
int cmd_sql (int argc, char **argv);
int cmd_register (int argc, char **argv);
int cmd_analyze (int argc, char **argv);
int cmd_predict (int argc, char **argv);
int cmd_report (int argc, char **argv);
int cmd_lungs (int argc, char **argv);
int cmd_merge (int argc, char **argv);
int cmd_calibrate (int argc, char **argv);
int cmd_severity (int argc, char **argv);
int cmd_push (int argc, char **argv);
int cmd_watch (int argc, char **argv);

char *cli_join_argv (int argc, char **argv);
int cli_usage_error (GOptionContext *ctx, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
void cli_describe (GOptionContext *ctx, const char *command, const char *notes);

/* --voi for the commands that read single films */
#define CLI_VOI_ENTRY(var)                                                                         \
  {                                                                                                \
    "voi", 0, 0, G_OPTION_ARG_STRING, &(var),                                                      \
        "DICOM window: first (default), none (whole stored range) or auto (the film's range)",     \
        "first|none|auto"                                                                          \
  }
/* --shard K/N for the commands that work patient by patient */
/* The options of the commands that talk to a PACS (ingest --dicomweb,
 * push, watch); cli_dicomweb_check() reads the credentials. */
typedef struct {
  char *auth_file, *cacert;
  double timeout_s;
  char *auth; /* from auth_file, else $CXRTRACK_DICOMWEB_AUTH, else NULL */
} CliDicomweb;

#define CLI_DICOMWEB_ENTRIES(d)                                                                    \
  { "auth-file",                                                                                   \
    0,                                                                                             \
    0,                                                                                             \
    G_OPTION_ARG_FILENAME,                                                                         \
    &(d).auth_file,                                                                                \
    "PACS credentials, one line: user:password or Bearer TOKEN (else "                             \
    "$CXRTRACK_DICOMWEB_AUTH; never on the command line)",                                         \
    "FILE" },                                                                                      \
      { "cacert",                                                                                  \
        0,                                                                                         \
        0,                                                                                         \
        G_OPTION_ARG_FILENAME,                                                                     \
        &(d).cacert,                                                                               \
        "Trust the CA certificates in this PEM file (a hospital's own CA) instead of the "         \
        "system's",                                                                                \
        "FILE" },                                                                                  \
  {                                                                                                \
    "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &(d).timeout_s,                                          \
        "Give a transfer up after this long without data (60)", "S"                                \
  }

void cli_dicomweb_init (CliDicomweb *d);
gboolean cli_dicomweb_check (GOptionContext *ctx, CliDicomweb *d, int *rc);
void cli_dicomweb_clear (CliDicomweb *d);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CliDicomweb, cli_dicomweb_clear)

#define CLI_SHARD_ENTRY(var)                                                                       \
  {                                                                                                \
    "shard", 0, 0, G_OPTION_ARG_STRING, &(var),                                                    \
        "Only the patients of shard K of N (patient_shard(patient_id, N) = K in SQL)", "K/N"       \
  }
gboolean cli_shard (GOptionContext *ctx, const char *text, CxrShard *shard, int *rc);
gboolean cli_limits_voi (const char *voi, CxrImageLimits *limits);
int cli_fail (GError *error);
char *cli_default_model (void);
gboolean cli_load_models (GOptionContext *ctx, const char *command, const char *model_arg,
                          gboolean no_model, const char *lung_arg, gboolean no_lungs,
                          CxrModel **model, CxrLungModel **lungs, int *rc);
void cli_print_analyze (const CxrAnalyzeSummary *s, const CxrAnalyzeOptions *opt);
char *cli_default_lung_model (void);
char *cli_default_severity_model (void);
char *cli_default_reference_limits (void);
gboolean cli_load_severity (GOptionContext *ctx, const char *command, const char *path,
                            gboolean no_severity, const CxrModel *model, CxrSeverityModel **out,
                            int *rc);

typedef struct {
  gboolean enabled; /* stderr is a terminal */
  gint64 start_us;
  const char *what; /* "rows", "pairs" ... */
} CliProgress;

void cli_progress_init (CliProgress *p, const char *what);
void cli_progress_show (CliProgress *p, guint64 done, double fraction, const char *extra);
void cli_progress_end (CliProgress *p);
