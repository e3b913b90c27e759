/* SPDX-License-Identifier: MIT
 *
 * Small helpers several modules share (util-private.h).
 */
#include <errno.h>
#include <math.h>

#include "util-private.h"

/* A whole decimal integer, nothing else; FALSE for "", "12x", overflow. */
gboolean
cxr__parse_int (const char *s, gint64 *out)
{
  char *end;
  if (*s == '\0')
    return FALSE;
  errno = 0;
  gint64 v = g_ascii_strtoll (s, &end, 10);
  if (errno || *end != '\0')
    return FALSE;
  *out = v;
  return TRUE;
}

/* A finite number in the C locale, nothing else. */
gboolean
cxr__parse_double (const char *s, double *out)
{
  char *end;
  if (*s == '\0')
    return FALSE;
  errno = 0;
  double v = g_ascii_strtod (s, &end);
  if (errno || *end != '\0' || !isfinite (v))
    return FALSE;
  *out = v;
  return TRUE;
}

/* Ascending doubles, for qsort and g_array_sort. */
int
cxr__cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* Counts a message and keeps it if fewer than @max are kept. */
void
cxr__messages_addv (GPtrArray *messages, guint64 *n_messages, guint max, const char *fmt,
                    va_list ap)
{
  (*n_messages)++;
  if (messages->len < max)
    g_ptr_array_add (messages, g_strdup_vprintf (fmt, ap));
}
