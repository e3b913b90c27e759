/* SPDX-License-Identifier: MIT
 *
 * Small helpers several modules share: strict number parsing, a sort
 * order for doubles, the capped message lists of run summaries, and
 * opening a file that must be a regular one.
 */
#pragma once

#include <stdarg.h>

#include <glib.h>

G_BEGIN_DECLS

gboolean cxr__parse_int (const char *s, gint64 *out);
gboolean cxr__parse_double (const char *s, double *out);
int cxr__cmp_double (gconstpointer a, gconstpointer b);
gboolean cxr__cpu_avx2_fma (void);
int cxr__cmp_int (gconstpointer a, gconstpointer b);
double cxr__median (double *v, gsize n);
double cxr__quantile (double *v, gsize n, double q);
double cxr__mad (const double *v, gsize n);
char *cxr__safe_name (const char *s);
int cxr__open_regular (const char *path, goffset *size, GError **error);
guint8 *cxr__read_fd (int fd, gsize n, const char *name, GError **error);
gboolean cxr__artifact_name_ok (const char *rel);
int cxr__artifact_open (const char *dir, const char *rel, goffset *size, GError **error);
guint8 *cxr__artifact_read (const char *dir, const char *rel, guint64 max_bytes, gsize *len,
                            GError **error);
void cxr__messages_addv (GPtrArray *messages, guint64 *n_messages, guint max, const char *fmt,
                         va_list ap) G_GNUC_PRINTF (4, 0);

G_END_DECLS
