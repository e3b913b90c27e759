/* SPDX-License-Identifier: MIT
 *
 * Inside the store: the SQLite connection and the helpers every store
 * file uses to run bound statements. Only the store files (store*.c)
 * include this header; every other module asks the store for plain C
 * structs (store-private.h), as only SQLite's pager touches its file.
 */
#pragma once

#include <math.h>
#include <sqlite3.h>

#include "cxr/register.h"
#include "cxr/store.h"

G_BEGIN_DECLS

struct _CxrStore {
  sqlite3 *db;
  char *path;
  int version; /* user_version after opening */
  CxrStoreFlags flags;
  int lock_fd;     /* the writer lock (cxr_store_lock), or -1 */
  char *note;      /* how the store was opened, if the user should know */
  char denied[64]; /* read-only: what the authorizer refused last */
  gint64 deadline; /* cxr_store_set_timeout: monotonic µs, or 0 */
  char *reserve;   /* a run's room on disk (PATH.reserve), or NULL */
  double timeout_s;
};

sqlite3_stmt *cxr__store_prepare (CxrStore *store, const char *sql, GError **error);
gboolean cxr__store_prepare_all (CxrStore *store, GError **error, ...) G_GNUC_NULL_TERMINATED;
gboolean cxr__store_fail (CxrStore *store, GError **error, const char *what);
gboolean cxr__store_step_done (CxrStore *store, sqlite3_stmt *st, const char *what, GError **error);
gboolean cxr__store_attach (CxrStore *store, const char *path, const char *name, const char *what,
                            GError **error);

static inline void
cxr__bind_text_or_null (sqlite3_stmt *st, int i, const char *s)
{
  if (s)
    sqlite3_bind_text (st, i, s, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (st, i);
}

static inline void
cxr__bind_double_or_null (sqlite3_stmt *st, int i, double v)
{
  if (isnan (v))
    sqlite3_bind_null (st, i);
  else
    sqlite3_bind_double (st, i, v);
}

/* A negative value is NULL. */
static inline void
cxr__bind_int_or_null (sqlite3_stmt *st, int i, gint64 v)
{
  if (v < 0)
    sqlite3_bind_null (st, i);
  else
    sqlite3_bind_int64 (st, i, v);
}

static inline const char *
cxr__col_text (sqlite3_stmt *st, int i)
{
  return (const char *) sqlite3_column_text (st, i);
}

/* NAN for NULL */
static inline double
cxr__col_double (sqlite3_stmt *st, int i)
{
  return sqlite3_column_type (st, i) == SQLITE_NULL ? NAN : sqlite3_column_double (st, i);
}

void cxr__col_deform_field (sqlite3_stmt *st, int col, CxrDeformField *field);

G_END_DECLS
