/* SPDX-License-Identifier: MIT
 *
 * The SQLite series store: opening, forward-only migrations, and the
 * small helpers every module uses to run bound statements.
 */
#pragma once

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

typedef struct _CxrStore CxrStore;

typedef enum {
  CXR_STORE_READ_WRITE = 0,
  CXR_STORE_READ_ONLY = 1 << 0,   /* PRAGMA query_only: no statement may write */
  CXR_STORE_NO_CREATE = 1 << 1,   /* the file must exist already */
} CxrStoreFlags;

CxrStore *cxr_store_open (const char *path, CxrStoreFlags flags, GError **error);
CxrStore *cxr_store_open_with_migrations (const char *path, CxrStoreFlags flags,
                                          const char *const *migrations, guint n_migrations,
                                          GError **error);
void cxr_store_free (CxrStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CxrStore, cxr_store_free)

sqlite3 *cxr_store_db (CxrStore *store);
const char *cxr_store_path (CxrStore *store);
int cxr_store_schema_version (CxrStore *store);
int cxr_store_latest_version (void);

gboolean cxr_store_exec (CxrStore *store, const char *sql, GError **error);
sqlite3_stmt *cxr_store_prepare (CxrStore *store, const char *sql, GError **error);
gboolean cxr_store_begin (CxrStore *store, GError **error);
gboolean cxr_store_commit (CxrStore *store, GError **error);
void cxr_store_rollback (CxrStore *store);
gboolean cxr_store_set_error (CxrStore *store, GError **error, const char *what);

gint64 cxr_store_run_begin (CxrStore *store, const char *command, const char *argv,
                            GError **error);
gboolean cxr_store_run_end (CxrStore *store, gint64 run_id, gboolean ok, GError **error);

G_END_DECLS
