/* SPDX-License-Identifier: MIT
 *
 * libcxr's side of the DCMTK module (dicom-private.h): opens
 * cxrtrack-dcmtk the first time a DICOM header or film is read, and
 * forwards to it. Where it is looked for: $CXRTRACK_DCMTK_MODULE when
 * set; else, as for the models (cxr_running_installed), for the installed cxrtrack
 * the installed module first, for any other program (one in its build
 * tree, the tests) the one built beside it first, so that an older
 * install never answers for the code being built and tested.
 */
#include "cxr-config.h"

#include <dlfcn.h>
#include <string.h>

#include "cxr/cxr.h"
#include "cxr/error.h"
#include "cxr/image.h"
#include "dicom-private.h"

typedef struct {
  void *handle;
  char *error; /* why it could not be opened */
} Loaded;

static gpointer
open_module (gpointer unused)
{
  (void) unused;
  Loaded *l = g_new0 (Loaded, 1);
  const char *env = g_getenv ("CXRTRACK_DCMTK_MODULE");
  gboolean inst = cxr_running_installed ();
  const char *paths[2];
  int n = 0;
  if (env && *env)
    paths[n++] = env;
  else
    {
      paths[n++] = inst ? CXR_DCMTK_MODULE_INSTALLED : CXR_DCMTK_MODULE_BUILD;
      paths[n++] = inst ? CXR_DCMTK_MODULE_BUILD : CXR_DCMTK_MODULE_INSTALLED;
    }
  GString *why = g_string_new (NULL);
  CxrDcmtkHost host = { CXR_DCMTK_ABI, cxr_image_new, cxr_image_free, cxr_error_quark };
  for (int i = 0; i < n && l->handle == NULL; i++)
    {
      void *h = dlopen (paths[i], RTLD_NOW | RTLD_LOCAL);
      CxrDcmtkInit init = h ? (CxrDcmtkInit) dlsym (h, "cxr_dcmtk_init") : NULL;
      if (init && init (&host))
        l->handle = h;
      else
        {
          g_string_append_printf (why, "%s%s: %s", why->len ? "; " : "", paths[i],
                                  h == NULL ? dlerror ()
                                  : init    ? "built for another cxrtrack"
                                            : "not a cxrtrack-dcmtk module");
          if (h)
            dlclose (h);
        }
    }
  l->error = l->handle ? NULL : g_strdup (why->str);
  g_string_free (why, TRUE);
  return l;
}

gpointer
cxr__dcmtk_symbol (const char *file, const char *name, GError **error)
{
  static GOnce once = G_ONCE_INIT;
  const Loaded *l = g_once (&once, open_module, NULL);
  gpointer f = l->handle ? dlsym (l->handle, name) : NULL;
  if (f == NULL)
    g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED,
                 "%s%sDICOM needs the module cxrtrack-dcmtk, which could not be opened (%s)",
                 file ? file : "", file ? ": " : "", l->error ? l->error : name);
  return f;
}

typedef gboolean (*ReadHeader) (const char *, guint64, CxrDicomMeta *, GError **);
typedef gboolean (*Decode) (const char *, const guint8 *, gsize, const CxrImageLimits *,
                            CxrImageInfo *, CxrImage **, GError **);

gboolean
cxr__dicom_read_header (const char *path, guint64 max_file_bytes, CxrDicomMeta *meta,
                        GError **error)
{
  ReadHeader f = (ReadHeader) cxr__dcmtk_symbol (path, "cxr__dicom_read_header", error);
  if (f == NULL)
    {
      memset (meta, 0, sizeof *meta);
      return FALSE;
    }
  return f (path, max_file_bytes, meta, error);
}

gboolean
cxr__dicom_decode (const char *name, const guint8 *data, gsize len, const CxrImageLimits *limits,
                   CxrImageInfo *info, CxrImage **out, GError **error)
{
  if (out)
    *out = NULL;
  Decode f = (Decode) cxr__dcmtk_symbol (name, "cxr__dicom_decode", error);
  return f && f (name, data, len, limits, info, out, error);
}
