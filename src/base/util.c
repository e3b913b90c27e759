/* SPDX-License-Identifier: MIT
 *
 * Small helpers several modules share (util-private.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
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

/* Ascending ints, for qsort and g_array_sort. */
int
cxr__cmp_int (gconstpointer a, gconstpointer b)
{
  int x = *(const int *) a, y = *(const int *) b;
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

/* @fd, opened with O_NONBLOCK, if it is a regular file: made blocking,
 * its size in @size. Else closed, and -1 with @error set naming @name and
 * what it is instead (a folder, a FIFO, a device). */
static int
regular_fd (int fd, const char *name, goffset *size, GError **error)
{
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
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: %s", name, what);
      return -1;
    }
  if (size)
    *size = st.st_size;
  return fd;
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
  return regular_fd (fd, path, size, error);
}

/**
 * cxr__read_fd:
 * @name: what @fd is, for messages
 *
 * Reads @n bytes from @fd, where it stands, and closes it.
 *
 * Returns: (transfer full): the bytes, or %NULL with @error set (out of
 * memory, or fewer bytes than @n).
 */
guint8 *
cxr__read_fd (int fd, gsize n, const char *name, GError **error)
{
  guint8 *buf = g_try_malloc (MAX (n, 1));
  if (buf == NULL)
    {
      close (fd);
      g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT, "%s: out of memory", name);
      return NULL;
    }
  gsize got = 0;
  while (got < n)
    {
      ssize_t k = read (fd, buf + got, n - got);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0)
        break;
      got += (gsize) k;
    }
  close (fd);
  if (got != n)
    {
      g_free (buf);
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO,
                   "%s: read failed (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes)", name, got,
                   n);
      return NULL;
    }
  return buf;
}

/**
 * cxr__artifact_name_ok:
 * Whether @rel, an artifact's path as a store holds it, is a plain
 * relative name: components separated by '/', none empty, "." or "..".
 * (A name may hold ".." inside a component: "scan..v0.map.png".)
 */
gboolean
cxr__artifact_name_ok (const char *rel)
{
  if (rel == NULL || *rel == '\0' || *rel == '/' || strlen (rel) > 4096)
    return FALSE;
  for (const char *c = rel; *c;)
    {
      const char *e = strchrnul (c, '/');
      gsize n = (gsize) (e - c);
      if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
        return FALSE;
      c = *e ? e + 1 : e;
      if (*e && *c == '\0')
        return FALSE; /* a trailing '/' */
    }
  return TRUE;
}

/**
 * cxr__artifact_open:
 * @dir: the store's artifacts folder
 * @rel: an artifact's name in the store (cxr__artifact_name_ok)
 * @size: (out) (optional): its size in bytes
 *
 * Opens @dir/@rel for reading, never outside @dir: the name must be
 * plain, and no component below @dir may be a symbolic link (each is
 * opened with O_NOFOLLOW from the one above), so a row of a copied or
 * merged store cannot make a reader open another file. Only a regular
 * file opens (cxr__open_regular's rules).
 *
 * Returns: a file descriptor to close(), or -1 with @error set
 * (CXR_ERROR_INVALID_INPUT for a name refused, CXR_ERROR_IO otherwise)
 * and errno ENOENT where the file is missing.
 */
int
cxr__artifact_open (const char *dir, const char *rel, goffset *size, GError **error)
{
  if (!cxr__artifact_name_ok (rel))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: artifact name '%s' is not a plain relative name: not read", dir,
                   rel ? rel : "");
      errno = EINVAL;
      return -1;
    }
  int at = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (at < 0)
    {
      int e = errno;
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot open: %s", dir, g_strerror (e));
      return -1;
    }
  g_auto (GStrv) parts = g_strsplit (rel, "/", -1);
  guint n = g_strv_length (parts);
  int fd = -1, e = 0;
  for (guint i = 0; i < n; i++)
    {
      gboolean last = i + 1 == n;
      int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | (last ? O_NONBLOCK : O_DIRECTORY);
      fd = openat (at, parts[i], flags);
      e = errno;
      close (at);
      if (fd < 0)
        break;
      at = fd;
    }
  if (fd < 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s/%s: cannot open%s: %s", dir, rel,
                   e == ELOOP || e == ENOTDIR ? " (a symbolic link is not followed)" : "",
                   g_strerror (e));
      errno = e; /* for the caller: ENOENT, a missing file */
      return -1;
    }
  g_autofree char *name = g_build_filename (dir, rel, NULL);
  fd = regular_fd (fd, name, size, error);
  if (fd < 0)
    errno = EINVAL; /* there, but not a regular file */
  return fd;
}

/**
 * cxr__artifact_read:
 * @max_bytes: the largest file read; a larger one is refused
 *
 * Reads an artifact whole, as cxr__artifact_open opens it.
 *
 * Returns: (transfer full): the bytes, or %NULL with @error set.
 */
guint8 *
cxr__artifact_read (const char *dir, const char *rel, guint64 max_bytes, gsize *len, GError **error)
{
  goffset size = 0;
  int fd = cxr__artifact_open (dir, rel, &size, error);
  if (fd < 0)
    return NULL;
  if ((guint64) size > max_bytes)
    {
      close (fd);
      g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT,
                   "%s/%s: %lld bytes, more than an artifact's limit of %" G_GUINT64_FORMAT
                   ": not read",
                   dir, rel, (long long) size, max_bytes);
      return NULL;
    }
  g_autofree char *name = g_build_filename (dir, rel, NULL);
  guint8 *buf = cxr__read_fd (fd, (gsize) size, name, error);
  if (buf == NULL)
    return NULL;
  *len = (gsize) size;
  return buf;
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
 * cxr__quantile:
 * The @q quantile (0..1) of @v[0..n), which it sorts, between order
 * statistics as numpy's default (linear); NAN when empty.
 */
double
cxr__quantile (double *v, gsize n, double q)
{
  if (n == 0)
    return NAN;
  qsort (v, n, sizeof (double), cxr__cmp_double);
  double pos = q * (n - 1);
  gsize i = (gsize) floor (pos);
  double f = pos - i;
  double a = v[i], b = v[MIN (i + 1, n - 1)];
  return a + f * (b - a);
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

/**
 * cxr__cpu_avx2_fma:
 * Whether this CPU runs AVX2 and FMA instructions (asked once). Builds
 * stay portable (no -march); the loops that use them check this first.
 */
gboolean
cxr__cpu_avx2_fma (void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  static gsize once = 0;
  static gboolean has;
  if (g_once_init_enter (&once))
    {
      __builtin_cpu_init ();
      has = __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
      g_once_init_leave (&once, 1);
    }
  return has;
#else
  return FALSE;
#endif
}
