/* SPDX-License-Identifier: MIT
 *
 * Small helpers several modules share (util-private.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cxr/error.h"

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

/**
 * cxr__open_regular:
 * @size: (out) (optional): the file's size in bytes
 *
 * Opens @path for reading only if it is a regular file: a FIFO, a device
 * or a socket is refused without ever blocking on it (the open itself is
 * non-blocking and the type is checked on the descriptor, so there is no
 * window between a check and the open), and a folder is named as one.
 *
 * Returns: a blocking file descriptor to close(), or -1 with @error set
 * (CXR_ERROR_IO, the path and the reason).
 */
int
cxr__open_regular (const char *path, goffset *size, GError **error)
{
  int fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot open: %s", path, g_strerror (e));
      return -1;
    }
  struct stat st;
  const char *what = NULL;
  if (fstat (fd, &st) != 0)
    what = g_strerror (errno);
  else if (S_ISDIR (st.st_mode))
    what = "is a folder, not a file";
  else if (S_ISFIFO (st.st_mode))
    what = "is a FIFO (named pipe), not a regular file";
  else if (S_ISCHR (st.st_mode) || S_ISBLK (st.st_mode))
    what = "is a device, not a regular file";
  else if (!S_ISREG (st.st_mode))
    what = "is not a regular file";
  if (what == NULL && fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK) != 0)
    what = g_strerror (errno);
  if (what)
    {
      close (fd);
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: %s", path, what);
      return -1;
    }
  if (size)
    *size = st.st_size;
  return fd;
}

/* Longest name cxr__safe_name returns; with a prefix and an extension a
 * file name stays well under the 255 bytes file systems allow. */
#define SAFE_NAME_MAX 96

/**
 * cxr__safe_name:
 * A file-name component for @s that no other string maps to: ASCII
 * letters, digits, '.', '-' and '_' are kept, every other byte becomes
 * "=XX" (its hexadecimal value), so '/', NUL and '=' itself cannot appear
 * unescaped and two different strings never give one name. A component
 * never starts with '.'. Longer than SAFE_NAME_MAX, it is cut (at a whole
 * escape) and ends "~" and 16 hex digits of the SHA-256 of @s ('~' is
 * otherwise always escaped, so a cut name is no plain one).
 *
 * Returns: (transfer full): the name.
 */
char *
cxr__safe_name (const char *s)
{
  GString *out = g_string_new (NULL);
  for (const guchar *p = (const guchar *) s; *p; p++)
    {
      gboolean keep = g_ascii_isalnum (*p) || *p == '-' || *p == '_'
                      || (*p == '.' && p != (const guchar *) s);
      if (keep)
        g_string_append_c (out, (char) *p);
      else
        g_string_append_printf (out, "=%02X", *p);
    }
  if (out->len > SAFE_NAME_MAX)
    {
      gsize cut = SAFE_NAME_MAX - 17;
      /* not inside an escape: "=XX" is whole or gone */
      for (gsize k = cut >= 2 ? cut - 2 : 0; k < cut; k++)
        if (out->str[k] == '=')
          cut = k;
      g_string_truncate (out, cut);
      g_autofree char *h = g_compute_checksum_for_string (G_CHECKSUM_SHA256, s, -1);
      g_string_append_printf (out, "~%.16s", h);
    }
  return g_string_free (out, FALSE);
}

/**
 * cxr__median:
 * The median of @v (sorted in place); NAN when empty.
 */
double
cxr__median (double *v, gsize n)
{
  if (n == 0)
    return NAN;
  qsort (v, n, sizeof (double), cxr__cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/**
 * cxr__mad:
 * The median absolute deviation of @v from its median (unscaled); NAN
 * when empty.
 */
double
cxr__mad (const double *v, gsize n)
{
  if (n == 0)
    return NAN;
  g_autofree double *w = g_memdup2 (v, n * sizeof (double));
  double med = cxr__median (w, n);
  for (gsize i = 0; i < n; i++)
    w[i] = fabs (v[i] - med);
  return cxr__median (w, n);
}
