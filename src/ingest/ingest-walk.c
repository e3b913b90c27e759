/* SPDX-License-Identifier: MIT
 *
 * The folder walk shared by the sources that read a tree of files instead
 * of a CSV (ingest --dicom, ingest --folder): every regular file under a
 * root, in name order, one directory listing in memory at a time.
 *
 * Directories are read one at a time, entries in name order, so a walk is
 * repeatable and its memory is one directory listing plus the stack of
 * folders still to visit. Symbolic links to folders are not followed; a
 * link to a file is read only with follow_symlinks. What is not read (a
 * link, a FIFO, a device, an unreadable entry) is counted as a rejected
 * row and noted with its path and why, so nothing under the root goes
 * unreported.
 */
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "ingest-private.h"

struct _CxrFileWalker {
  GPtrArray *dirs;  /* folders still to read (a stack) */
  GPtrArray *files; /* the current folder's files, sorted, consumed from the end */
};

CxrFileWalker *
cxr__file_walker_new (const char *root)
{
  CxrFileWalker *w = g_new0 (CxrFileWalker, 1);
  w->dirs = g_ptr_array_new_with_free_func (g_free);
  w->files = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (w->dirs, g_canonicalize_filename (root, NULL));
  return w;
}

/* A walk over the files of @paths (in that order) instead of a folder. */
CxrFileWalker *
cxr__file_walker_new_files (GPtrArray *paths)
{
  CxrFileWalker *w = g_new0 (CxrFileWalker, 1);
  w->dirs = g_ptr_array_new_with_free_func (g_free);
  w->files = g_ptr_array_new_with_free_func (g_free);
  for (guint i = paths->len; i > 0; i--)
    g_ptr_array_add (w->files, g_strdup (paths->pdata[i - 1]));
  return w;
}

void
cxr__file_walker_free (CxrFileWalker *w)
{
  if (w == NULL)
    return;
  g_ptr_array_unref (w->dirs);
  g_ptr_array_unref (w->files);
  g_free (w);
}

static int
by_name_desc (gconstpointer a, gconstpointer b)
{
  return -strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Reads the next folder on the stack: its files become the current list
 * (last name first, so they come off the end in name order), its
 * sub-folders go on the stack. */
static void
read_dir (CxrFileWalker *w, CxrIngestSummary *sum)
{
  g_autofree char *dir = g_ptr_array_steal_index (w->dirs, w->dirs->len - 1);
  g_autoptr (GError) err = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &err);
  if (d == NULL)
    {
      cxr__ingest_note (sum, "%s", err->message);
      return;
    }
  g_autoptr (GPtrArray) subdirs = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)))
    {
      char *path = g_build_filename (dir, name, NULL);
      GStatBuf st;
      if (g_lstat (path, &st) == 0 && S_ISDIR (st.st_mode))
        g_ptr_array_add (subdirs, path);
      else
        g_ptr_array_add (w->files, path); /* links and odd files: the walk says why */
    }
  g_ptr_array_sort (w->files, by_name_desc);
  g_ptr_array_sort (subdirs, by_name_desc);
  for (guint i = 0; i < subdirs->len; i++)
    g_ptr_array_add (w->dirs, g_strdup (subdirs->pdata[i]));
}

/**
 * cxr__file_walker_next:
 * @sum: where each file is counted as a row, and those not read are
 *   counted rejected and noted
 *
 * Returns: (transfer full): the next regular file to read, or %NULL when
 * the walk is over.
 */
char *
cxr__file_walker_next (CxrFileWalker *w, gboolean follow_symlinks, CxrIngestSummary *sum)
{
  for (;;)
    {
      while (w->files->len == 0 && w->dirs->len > 0)
        read_dir (w, sum);
      if (w->files->len == 0)
        return NULL;
      char *path = g_ptr_array_steal_index (w->files, w->files->len - 1);
      sum->n_rows++;

      /* never open a FIFO or a device; links only when asked */
      GStatBuf st;
      const char *refuse = NULL;
      if (g_lstat (path, &st) != 0)
        refuse = "cannot be read, not stored";
      else if (S_ISLNK (st.st_mode) && !follow_symlinks)
        refuse = "a symbolic link: not read (--follow-symlinks reads it)";
      else if (g_stat (path, &st) != 0 || !S_ISREG (st.st_mode))
        refuse = "not a regular file, not read";
      if (refuse == NULL)
        return path;
      sum->n_rejected++;
      cxr__ingest_note (sum, "%s: %s", path, refuse);
      g_free (path);
    }
}

/**
 * cxr__file_walker_next_record:
 * @read: turns one file into @r, or returns %FALSE with the note to make
 *   (path and reason) in its last argument
 * @r: (out): the next file's record
 * @why_invalid: (out): set by @read when the film is to be stored invalid
 *
 * The next file under the root that @read makes a record of. Files it
 * refuses are counted as rows and rejected, and noted as it says.
 * Returns: %FALSE when the walk is over.
 */
gboolean
cxr__file_walker_next_record (CxrFileWalker *w, CxrFileReader read, gpointer data,
                              const CxrIngestOptions *opt, CxrIngestSummary *sum, CxrScanRecord *r,
                              char **why_invalid)
{
  *why_invalid = NULL;
  for (;;)
    {
      g_autofree char *path = cxr__file_walker_next (w, opt->follow_symlinks, sum);
      if (path == NULL)
        return FALSE;
      g_autofree char *refused = NULL;
      memset (r, 0, sizeof *r);
      if (read (data, path, opt, r, why_invalid, &refused))
        return TRUE;
      cxr__scan_record_clear (r);
      sum->n_rejected++;
      cxr__ingest_note (sum, "%s", refused);
    }
}
