/* SPDX-License-Identifier: MIT
 *
 * The SQLite series store (about 750 lines: opening, migrations, runs,
 * the writer's lock and the read-only guards of `sql` belong together).
 * Opening a store applies the forward-only
 * migrations embedded from schema/ (as a GResource) in name order, each in
 * its own IMMEDIATE transaction together with the PRAGMA user_version bump,
 * so a crash leaves the database at one version or the next, never between.
 * A database whose user_version is newer than this binary knows is refused
 * (CXR_ERROR_SCHEMA_VERSION) rather than written to blindly.
 *
 * Connections use WAL (readers never block the writer), foreign_keys=ON and
 * synchronous=NORMAL: in WAL mode that survives a killed process; only a
 * power cut can lose the last commits, never consistency.
 */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cxr/error.h"
#include "sqlfunc-private.h"
#include "store-db.h"
#include "store-private.h"

#include "cxr-config.h"
#include "cxr-schema-res.h"

/* Sets @error from the connection's last error; returns %FALSE. */
gboolean
cxr__store_fail (CxrStore *store, GError **error, const char *what)
{
  if (sqlite3_errcode (store->db) == SQLITE_INTERRUPT && store->deadline > 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT, "%s: %s: stopped after %g s (the time limit)",
                   store->path, what, store->timeout_s);
      return FALSE;
    }
  g_set_error (error, CXR_ERROR, CXR_ERROR_DB, "%s: %s: %s", store->path, what,
               sqlite3_errmsg (store->db));
  return FALSE;
}

/* Steps a statement that returns no rows, then resets it and clears its
 * bindings for the next use. */
gboolean
cxr__store_step_done (CxrStore *store, sqlite3_stmt *st, const char *what, GError **error)
{
  int rc = sqlite3_step (st);
  sqlite3_reset (st);
  sqlite3_clear_bindings (st);
  if (rc != SQLITE_DONE)
    return cxr__store_fail (store, error, what);
  return TRUE;
}

/* A "file:" URI for the store at @path (made absolute), with @query
 * ("mode=ro", "immutable=1") or none. Every connection is opened with
 * SQLITE_OPEN_URI, so that ATTACH takes these too. */
static char *
store_uri (const char *path, const char *query)
{
  g_autofree char *abs = g_canonicalize_filename (path, NULL);
  g_autofree char *esc = g_uri_escape_string (abs, "/", FALSE);
  return g_strdup_printf ("file:%s%s%s", esc, query ? "?" : "", query ? query : "");
}

/* Whether this user may create files beside @path (SQLite's -shm and
 * -wal): a store in a folder that is not is read as immutable. */
static gboolean
folder_writable (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  return access (dir, W_OK) == 0;
}

/* Attaches the database at @path to @store's connection as @name (a
 * fixed identifier of the caller's), read-only: nothing stored in it (a
 * trigger, say) can write to it; immutable in a folder this user cannot
 * write to. The caller detaches it. */
gboolean
cxr__store_attach (CxrStore *store, const char *path, const char *name, const char *what,
                   GError **error)
{
  g_autofree char *sql = g_strdup_printf ("ATTACH DATABASE ? AS %s", name);
  sqlite3_stmt *st = cxr__store_prepare (store, sql, error);
  if (st == NULL)
    return FALSE;
  g_autofree char *uri = store_uri (path, folder_writable (path) ? "mode=ro" : "immutable=1");
  sqlite3_bind_text (st, 1, uri, -1, SQLITE_TRANSIENT);
  gboolean ok = cxr__store_step_done (store, st, what, error);
  sqlite3_finalize (st);
  return ok;
}

static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The migrations compiled into libcxr, in order. */
static GPtrArray *
builtin_migrations (void)
{
  static GPtrArray *list;
  static gsize once;
  if (g_once_init_enter (&once))
    {
      GPtrArray *l = g_ptr_array_new ();
      /* Referenced directly: a static library drops the resource's constructor. */
      GResource *res = cxr_schema_get_resource ();
      g_auto (GStrv) names = g_resource_enumerate_children (res, "/org/cxrtrack/schema/", 0, NULL);
      guint n = names ? g_strv_length (names) : 0;
      if (names)
        qsort (names, n, sizeof (char *), compare_names);
      for (guint i = 0; i < n; i++)
        {
          if (!g_str_has_suffix (names[i], ".sql"))
            continue;
          g_autofree char *rp = g_strconcat ("/org/cxrtrack/schema/", names[i], NULL);
          GBytes *b = g_resource_lookup_data (res, rp, 0, NULL);
          g_assert (b != NULL);
          /* Migration 0003_x.sql must be the third: a gap is a build error. */
          g_assert (atoi (names[i]) == (int) l->len + 1);
          g_ptr_array_add (l, (gpointer) g_bytes_get_data (b, NULL)); /* kept for the process */
        }
      list = l;
      g_once_init_leave (&once, 1);
    }
  return list;
}

int
cxr_store_latest_version (void)
{
  return (int) builtin_migrations ()->len;
}

static gboolean
exec (CxrStore *store, const char *sql, GError **error)
{
  char *msg = NULL;
  if (sqlite3_exec (store->db, sql, NULL, NULL, &msg) != SQLITE_OK)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_DB, "%s: %s", store->path, msg ? msg : "error");
      sqlite3_free (msg);
      return FALSE;
    }
  return TRUE;
}

gboolean
cxr_store_exec (CxrStore *store, const char *sql, GError **error)
{
  return exec (store, sql, error);
}

static int
read_user_version (CxrStore *store)
{
  sqlite3_stmt *st = NULL;
  int v = -1;
  if (sqlite3_prepare_v2 (store->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK
      && sqlite3_step (st) == SQLITE_ROW)
    v = sqlite3_column_int (st, 0);
  sqlite3_finalize (st);
  return v;
}

/* FALSE with @error set if any row refers to one that is not there. */
static gboolean
foreign_keys_intact (CxrStore *store, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (store, "PRAGMA foreign_key_check", error);
  if (st == NULL)
    return FALSE;
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    g_set_error (error, CXR_ERROR, CXR_ERROR_DB, "%s: a row of %s refers to a missing row of %s",
                 store->path, cxr__col_text (st, 0), cxr__col_text (st, 2));
  sqlite3_finalize (st);
  return rc == SQLITE_DONE;
}

static gboolean
migrate (CxrStore *store, const char *const *migrations, guint n, GError **error)
{
  for (guint i = (guint) store->version; i < n; i++)
    {
      if (!exec (store, "BEGIN IMMEDIATE", error))
        return FALSE;
      /* Another process may have migrated while we waited for the lock. */
      int now = read_user_version (store);
      if (now > (int) i)
        {
          exec (store, "COMMIT", NULL);
          store->version = now;
          i = (guint) now - 1;
          continue;
        }
      g_autofree char *bump = g_strdup_printf ("PRAGMA user_version = %u", i + 1);
      if (!exec (store, migrations[i], error) || !exec (store, bump, error)
          || !foreign_keys_intact (store, error))
        {
          exec (store, "ROLLBACK", NULL);
          g_prefix_error (error, "migration %u: ", i + 1);
          return FALSE;
        }
      if (!exec (store, "COMMIT", error))
        return FALSE;
      store->version = (int) i + 1;
    }
  return TRUE;
}

/**
 * cxr_store_open_with_migrations:
 * @migrations: SQL texts; migration k (1-based) is @migrations[k-1]
 *
 * Opens (creating unless CXR_STORE_NO_CREATE) and migrates. Tests use
 * this with their own lists; everything else calls cxr_store_open().
 *
 * Returns: (transfer full): the store, or %NULL with @error set.
 */
/* --- read-only stores ------------------------------------------------------- */

/* PRAGMAs a read-only store answers: they read and set nothing. Those
 * marked take a table or index name as their argument. */
static const struct {
  const char *name;
  gboolean takes_name;
} read_pragmas[] = {
  { "table_info", TRUE },       { "table_xinfo", TRUE },       { "table_list", TRUE },
  { "index_list", TRUE },       { "index_info", TRUE },        { "index_xinfo", TRUE },
  { "foreign_key_list", TRUE }, { "foreign_key_check", TRUE }, { "integrity_check", FALSE },
  { "quick_check", FALSE },     { "function_list", FALSE },    { "pragma_list", FALSE },
  { "collation_list", FALSE },  { "database_list", FALSE },    { "compile_options", FALSE },
  { "module_list", FALSE },     { "user_version", FALSE },     { "schema_version", FALSE },
  { "application_id", FALSE },  { "page_count", FALSE },       { "page_size", FALSE },
  { "freelist_count", FALSE },  { "encoding", FALSE },         { "journal_mode", FALSE },
  { "data_version", FALSE },    { "foreign_keys", FALSE },     { "query_only", FALSE },
};

/* The authorizer of a read-only store (sqlite3_set_authorizer): every
 * statement that would change the store or anything outside it is
 * refused when it is prepared, and what was refused is kept for the
 * message. Reading, and temporary tables of one's own, are allowed. */
static int
authorize (void *data, int action, const char *a1, const char *a2, const char *db,
           const char *trigger)
{
  CxrStore *store = data;
  const char *what = NULL;
  gboolean temp = db && g_str_equal (db, "temp");
  switch (action)
    {
    case SQLITE_READ:
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE:
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT: return SQLITE_OK;
    case SQLITE_FUNCTION:
      if (a2 && g_ascii_strcasecmp (a2, "load_extension") == 0)
        what = "load_extension()";
      /* with one argument it returns a pointer into this process */
      else if (a2 && g_ascii_strcasecmp (a2, "fts3_tokenizer") == 0)
        what = "fts3_tokenizer()";
      break;
    case SQLITE_PRAGMA:
      {
        what = "a PRAGMA that changes a setting";
        for (guint i = 0; i < G_N_ELEMENTS (read_pragmas); i++)
          if (g_ascii_strcasecmp (a1, read_pragmas[i].name) == 0
              && (a2 == NULL || read_pragmas[i].takes_name))
            what = NULL;
        break;
      }
    case SQLITE_ATTACH:
    case SQLITE_DETACH: what = "ATTACH and DETACH"; break;
    case SQLITE_UPDATE:
      /* A pragma's table-valued function (pragma_table_info) is
       * authorised, when it is prepared, as an UPDATE of the schema
       * table's columns; it writes nothing, and the statement is still
       * refused unless sqlite3_stmt_readonly() says it only reads (an
       * UPDATE of sqlite_master also needs writable_schema, refused) */
      if (a1 && g_str_equal (a1, "sqlite_master") && trigger == NULL)
        break;
      G_GNUC_FALLTHROUGH;
    case SQLITE_INSERT:
    case SQLITE_DELETE:
      if (!temp)
        what = "a statement that writes";
      break;
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW: return SQLITE_OK;
    default: what = "a statement that changes the schema"; break;
    }
  if (what == NULL)
    return SQLITE_OK;
  g_strlcpy (store->denied, what, sizeof store->denied);
  return SQLITE_DENY;
}

/* A read-only store in a folder it cannot write to: WAL needs its -shm
 * file, so the store is opened as immutable instead (no locks, and only
 * what has been checkpointed into the main file is seen). */
static gboolean
open_immutable (CxrStore *store, GError **error)
{
  sqlite3_close_v2 (store->db);
  store->db = NULL;
  g_autofree char *uri = store_uri (store->path, "immutable=1");
  if (sqlite3_open_v2 (uri, &store->db,
                       SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL)
      != SQLITE_OK)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot open database: %s", store->path,
                   store->db ? sqlite3_errmsg (store->db) : "out of memory");
      return FALSE;
    }
  g_autofree char *wal = g_strconcat (store->path, "-wal", NULL);
  struct stat st;
  gboolean pending = stat (wal, &st) == 0 && st.st_size > 0;
  store->note = g_strdup_printf (
      "%s: in a folder this user cannot write to: read as immutable%s", store->path,
      pending ? " (its -wal file holds changes not yet checkpointed: they are not seen)" : "");
  return TRUE;
}

/**
 * cxr_store_open_with_migrations:
 * @migrations: SQL texts; migration k (1-based) is @migrations[k-1]
 *
 * Opens (creating unless CXR_STORE_NO_CREATE) and migrates. A new store
 * is created readable by its owner only (it holds patient data). With
 * CXR_STORE_READ_ONLY the file is opened read-only, and every statement
 * that would write, change a setting, attach a file, vacuum or load an
 * extension is refused; a store in a read-only folder is then read as
 * immutable, with a note (cxr_store_note). Tests use this with their own
 * migrations; everything else calls cxr_store_open().
 *
 * Returns: (transfer full): the store, or %NULL with @error set.
 */
CxrStore *
cxr_store_open_with_migrations (const char *path, CxrStoreFlags flags,
                                const char *const *migrations, guint n_migrations, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  g_autoptr (CxrStore) store = g_new0 (CxrStore, 1);
  store->path = g_strdup (path);
  store->flags = flags;
  store->lock_fd = -1;
  gboolean read_only = (flags & CXR_STORE_READ_ONLY) != 0;
  int oflags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX
               | SQLITE_OPEN_URI;
  gboolean existed = g_file_test (path, G_FILE_TEST_EXISTS);
  if (!(flags & CXR_STORE_NO_CREATE) && !read_only)
    oflags |= SQLITE_OPEN_CREATE;
  g_autofree char *uri = store_uri (path, NULL);
  if (sqlite3_open_v2 (uri, &store->db, oflags, NULL) != SQLITE_OK)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot open database: %s", path,
                   store->db ? sqlite3_errmsg (store->db) : "out of memory");
      return NULL;
    }
  sqlite3_extended_result_codes (store->db, 1);
  sqlite3_busy_timeout (store->db, 30000);

  /* The first read tells a non-database file apart from a database. */
  store->version = read_user_version (store);
  /* (extended codes: a WAL store with no -shm answers
   * SQLITE_READONLY_CANTINIT, whose primary code is SQLITE_READONLY) */
  int first_rc = sqlite3_errcode (store->db) & 0xff;
  if (store->version < 0 && read_only
      && (first_rc == SQLITE_CANTOPEN || first_rc == SQLITE_READONLY))
    {
      if (!open_immutable (store, error))
        return NULL;
      store->version = read_user_version (store);
    }
  if (store->version < 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_DB, "%s: not a cxrtrack database: %s", path,
                   sqlite3_errmsg (store->db));
      return NULL;
    }
  if (!existed && !read_only)
    g_chmod (path, 0600);
  if (store->version > (int) n_migrations)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_SCHEMA_VERSION,
                   "%s: written by a newer cxrtrack (schema version %d; this cxrtrack %s knows "
                   "versions up to %u); upgrade cxrtrack to use it",
                   path, store->version, CXR_VERSION, n_migrations);
      return NULL;
    }
  if (!exec (store, "PRAGMA synchronous = NORMAL;", error))
    return NULL;
  if (cxr__sql_register_functions (store->db) != SQLITE_OK)
    {
      cxr__store_fail (store, error, "registering SQL functions");
      return NULL;
    }
  if (read_only)
    {
      if (!exec (store, "PRAGMA foreign_keys = ON; PRAGMA query_only = ON", error))
        return NULL;
      sqlite3_set_authorizer (store->db, authorize, store);
    }
  else
    {
      /* Migrations run with foreign keys off, as SQLite's table rebuilds
       * need, and must leave every reference intact. */
      if (!exec (store, "PRAGMA journal_mode = WAL", error)
          || !migrate (store, migrations, n_migrations, error)
          || !exec (store, "PRAGMA foreign_keys = ON", error))
        return NULL;
    }
  return g_steal_pointer (&store);
}

/**
 * cxr_store_open:
 * Opens the store at @path with cxrtrack's own schema.
 *
 * Returns: (transfer full): the store, or %NULL with @error set.
 */
CxrStore *
cxr_store_open (const char *path, CxrStoreFlags flags, GError **error)
{
  GPtrArray *m = builtin_migrations ();
  return cxr_store_open_with_migrations (path, flags, (const char *const *) m->pdata, m->len,
                                         error);
}

static void release_reserve (CxrStore *store);

void
cxr_store_free (CxrStore *store)
{
  if (store == NULL)
    return;
  if (store->db)
    sqlite3_close_v2 (store->db);
  if (store->lock_fd >= 0)
    close (store->lock_fd); /* releases the lock */
  release_reserve (store);
  g_free (store->path);
  g_free (store->note);
  g_free (store);
}

/**
 * cxr_store_artifacts_dir:
 * The folder beside the store that holds its artifacts (difference maps):
 * PATH.artifacts. Artifact paths in the store are relative to it.
 *
 * Returns: (transfer full): the folder's path.
 */
char *
cxr_store_artifacts_dir (CxrStore *store)
{
  return g_strconcat (store->path, ".artifacts", NULL);
}

/**
 * cxr_store_note:
 * Returns: (nullable): how the store had to be opened, for the user
 * (a read-only store in a read-only folder), or %NULL.
 */
const char *
cxr_store_note (CxrStore *store)
{
  return store->note;
}

/* The progress handler of cxr_store_set_timeout: non-zero interrupts. */
static int
past_deadline (void *data)
{
  CxrStore *store = data;
  return g_get_monotonic_time () > store->deadline;
}

/**
 * cxr_store_set_timeout:
 * @seconds: how long the statements run from now may take, together;
 * 0 for no limit
 *
 * A statement still running then is interrupted and fails with a message
 * that names the limit (cxr__store_fail).
 */
void
cxr_store_set_timeout (CxrStore *store, double seconds)
{
  store->timeout_s = seconds > 0 ? seconds : 0;
  store->deadline = seconds > 0 ? g_get_monotonic_time () + (gint64) (seconds * 1e6) : 0;
  sqlite3_progress_handler (store->db, seconds > 0 ? 1000 : 0, seconds > 0 ? past_deadline : NULL,
                            store);
}

/**
 * cxr_store_lock:
 * Takes the store's writer lock (an exclusive flock on PATH.lock, which
 * the kernel releases when the process ends, however it ends) for
 * @command, so that two commands never write the same store at once; a
 * second one is told at once who holds it. Runs still marked running from
 * before are then known to have died: they become 'interrupted'. The
 * lock is held until the store is freed.
 */
gboolean
cxr_store_lock (CxrStore *store, const char *command, GError **error)
{
  if (store->lock_fd >= 0)
    return TRUE; /* held already, by this store */
  g_autofree char *lp = g_strconcat (store->path, ".lock", NULL);
  int fd = open (lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && (store->flags & CXR_STORE_READ_ONLY) && (errno == EROFS || errno == EACCES))
    return TRUE; /* read whole where nobody can write either (a read-only mount) */
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot open: %s", lp, g_strerror (e));
      return FALSE;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      char who[256] = "";
      ssize_t n = pread (fd, who, sizeof who - 1, 0);
      who[MAX (n, 0)] = '\0';
      g_strchomp (who);
      close (fd);
      g_set_error (error, CXR_ERROR, CXR_ERROR_CONFLICT,
                   "%s: another cxrtrack command is writing to this store (%s); wait for it to "
                   "end, then run again",
                   store->path, *who ? who : "unknown");
      return FALSE;
    }
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *when = g_date_time_format_iso8601 (now);
  g_autofree char *who = g_strdup_printf ("%s, pid %d, since %s\n", command, (int) getpid (), when);
  if (ftruncate (fd, 0) != 0 || pwrite (fd, who, strlen (who), 0) < 0)
    {
      /* the lock holds without the words */
    }
  store->lock_fd = fd;
  if (store->flags & CXR_STORE_READ_ONLY)
    return TRUE; /* (its interrupted runs are marked by its next writer) */
  return exec (
      store, "UPDATE runs SET status = 'interrupted' WHERE status = 'running' AND ended_at IS NULL",
      error);
}

const char *
cxr_store_path (CxrStore *store)
{
  return store->path;
}

int
cxr_store_schema_version (CxrStore *store)
{
  return store->version;
}

/**
 * cxr__store_prepare:
 * Returns: (transfer full): a statement for sqlite3_finalize(), or %NULL.
 */
sqlite3_stmt *
cxr__store_prepare (CxrStore *store, const char *sql, GError **error)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db, sql, -1, &st, NULL) != SQLITE_OK)
    {
      cxr__store_fail (store, error, "prepare");
      return NULL;
    }
  return st;
}

/**
 * cxr__store_prepare_all:
 * @...: pairs of (sqlite3_stmt **, const char *sql), then %NULL
 *
 * Prepares each statement in turn, stopping at the first that fails (the
 * ones not reached stay %NULL; the caller finalizes what was made).
 */
gboolean
cxr__store_prepare_all (CxrStore *store, GError **error, ...)
{
  va_list ap;
  va_start (ap, error);
  gboolean ok = TRUE;
  sqlite3_stmt **st;
  while (ok && (st = va_arg (ap, sqlite3_stmt **)) != NULL)
    {
      const char *sql = va_arg (ap, const char *);
      *st = cxr__store_prepare (store, sql, error);
      ok = *st != NULL;
    }
  va_end (ap);
  return ok;
}

gboolean
cxr_store_begin (CxrStore *store, GError **error)
{
  return exec (store, "BEGIN IMMEDIATE", error);
}

gboolean
cxr_store_commit (CxrStore *store, GError **error)
{
  return exec (store, "COMMIT", error);
}

void
cxr_store_rollback (CxrStore *store)
{
  if (!sqlite3_get_autocommit (store->db))
    exec (store, "ROLLBACK", NULL);
}

/* --- a run's room on disk -------------------------------------------------- */

/* What a run keeps aside for its own record (PATH.reserve): a run that
 * fails because the disk is full still needs a few pages of WAL to say
 * so, and would otherwise stay 'running'. */
#define RUN_RESERVE_BYTES (64 << 10)

static void
take_reserve (CxrStore *store)
{
  g_autofree char *path = g_strconcat (store->path, ".reserve", NULL);
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return; /* best effort: the run goes on without */
  gboolean ok = posix_fallocate (fd, 0, RUN_RESERVE_BYTES) == 0;
  close (fd);
  if (ok)
    store->reserve = g_steal_pointer (&path);
  else
    g_unlink (path);
}

static void
release_reserve (CxrStore *store)
{
  if (store->reserve)
    g_unlink (store->reserve);
  g_clear_pointer (&store->reserve, g_free);
}

/* After a run's record could not be written: with the disk full, the
 * reserve is given back (and a transaction the failure left open rolled
 * back, so the record is not rolled back with it); TRUE when it is worth
 * writing again. */
static gboolean
room_for_retry (CxrStore *store)
{
  if ((sqlite3_errcode (store->db) & 0xff) != SQLITE_FULL || store->reserve == NULL)
    return FALSE;
  if (!sqlite3_get_autocommit (store->db))
    exec (store, "ROLLBACK", NULL);
  release_reserve (store);
  return TRUE;
}

/**
 * cxr_store_run_begin:
 * Records the start of a run in the runs table (committed at once, so a
 * killed run leaves a row with ended_at NULL behind as evidence).
 *
 * Returns: the run_id, or -1 with @error set.
 */
gint64
cxr_store_run_begin (CxrStore *store, const char *command, const char *argv, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (store,
                                         "INSERT INTO runs (command, argv, version, started_at) "
                                         "VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                                         error);
  if (st == NULL)
    return -1;
  sqlite3_bind_text (st, 1, command, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, argv ? argv : command, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, CXR_VERSION, -1, SQLITE_STATIC);
  int rc = sqlite3_step (st);
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    {
      cxr__store_fail (store, error, "recording the run");
      return -1;
    }
  take_reserve (store);
  return sqlite3_last_insert_rowid (store->db);
}

static gboolean
run_end_once (CxrStore *store, gint64 run_id, gboolean ok, GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "UPDATE runs SET ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), status = ? "
      "WHERE run_id = ?",
      error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, ok ? "done" : "failed", -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, run_id);
  int rc = sqlite3_step (st);
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    return cxr__store_fail (store, error, "closing the run");
  return TRUE;
}

gboolean
cxr_store_run_end (CxrStore *store, gint64 run_id, gboolean ok, GError **error)
{
  gboolean done = run_end_once (store, run_id, ok, NULL)
                  || (room_for_retry (store) && run_end_once (store, run_id, ok, NULL))
                  || run_end_once (store, run_id, ok, error);
  release_reserve (store);
  return done;
}

/**
 * cxr__store_run_counts:
 * Records a run's counts, and @messages (one per line) unless %NULL.
 */
static gboolean
run_counts_once (CxrStore *store, gint64 run_id, const CxrRunCounts *c, const char *messages,
                 GError **error)
{
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "UPDATE runs SET n_rows = ?, n_ok = ?, n_missing = ?, n_invalid = ?, n_unchanged = ?,"
      " n_rejected = ?, n_conflicts = ?, messages = coalesce(?, messages) WHERE run_id = ?",
      error);
  if (st == NULL)
    return FALSE;
  guint64 v[] = { c->n_rows,      c->n_ok,       c->n_missing,  c->n_invalid,
                  c->n_unchanged, c->n_rejected, c->n_conflicts };
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    sqlite3_bind_int64 (st, (int) i + 1, (gint64) v[i]);
  cxr__bind_text_or_null (st, 8, messages);
  sqlite3_bind_int64 (st, 9, run_id);
  gboolean ok = cxr__store_step_done (store, st, "recording run counts", error);
  sqlite3_finalize (st);
  return ok;
}

gboolean
cxr__store_run_counts (CxrStore *store, gint64 run_id, const CxrRunCounts *c, const char *messages,
                       GError **error)
{
  return run_counts_once (store, run_id, c, messages, NULL)
         || (room_for_retry (store) && run_counts_once (store, run_id, c, messages, NULL))
         || run_counts_once (store, run_id, c, messages, error);
}

/**
 * cxr_store_counts:
 * Patients (all, and with 2+ scans) and scans (all, and readable).
 */
gboolean
cxr_store_counts (CxrStore *store, CxrStoreCounts *out, GError **error)
{
  memset (out, 0, sizeof *out);
  sqlite3_stmt *st = cxr__store_prepare (
      store,
      "SELECT (SELECT count(*) FROM patients),"
      " (SELECT count(*) FROM patients WHERE n_scans >= 2),"
      " (SELECT count(*) FROM scans), (SELECT count(*) FROM scans WHERE status = 'ok')",
      error);
  if (st == NULL)
    return FALSE;
  gboolean ok = sqlite3_step (st) == SQLITE_ROW;
  if (ok)
    {
      out->n_patients = sqlite3_column_int64 (st, 0);
      out->n_patients_multi = sqlite3_column_int64 (st, 1);
      out->n_scans = sqlite3_column_int64 (st, 2);
      out->n_scans_ok = sqlite3_column_int64 (st, 3);
    }
  else
    cxr__store_fail (store, error, "counting");
  sqlite3_finalize (st);
  return ok;
}

/* Runs one prepared statement for cxr_store_query. */
static gboolean
query_statement (CxrStore *store, sqlite3_stmt *st, const CxrQueryHandler *h, gpointer data,
                 GError **error)
{
  int nc = sqlite3_column_count (st);
  g_autofree const char **names = g_new0 (const char *, nc + 1);
  g_autofree CxrValue *v = g_new0 (CxrValue, MAX (nc, 1));
  for (int i = 0; i < nc; i++)
    names[i] = sqlite3_column_name (st, i);
  if (h->columns)
    h->columns (nc, names, data);
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      for (int i = 0; i < nc; i++)
        {
          CxrValue *x = &v[i];
          memset (x, 0, sizeof *x);
          switch (sqlite3_column_type (st, i))
            {
            case SQLITE_NULL: x->type = CXR_VALUE_NULL; break;
            case SQLITE_INTEGER:
              x->type = CXR_VALUE_INTEGER;
              x->integer = sqlite3_column_int64 (st, i);
              x->real = (double) x->integer;
              x->text = (const char *) sqlite3_column_text (st, i);
              break;
            case SQLITE_FLOAT:
              x->type = CXR_VALUE_REAL;
              x->real = sqlite3_column_double (st, i);
              x->text = (const char *) sqlite3_column_text (st, i);
              break;
            case SQLITE_BLOB:
              x->type = CXR_VALUE_BLOB;
              x->blob = sqlite3_column_blob (st, i);
              x->bytes = (gsize) sqlite3_column_bytes (st, i);
              break;
            default:
              x->type = CXR_VALUE_TEXT;
              x->text = (const char *) sqlite3_column_text (st, i);
              x->bytes = (gsize) sqlite3_column_bytes (st, i);
            }
        }
      if (h->row)
        h->row (nc, v, data);
    }
  if (h->end)
    h->end (data);
  if (rc != SQLITE_DONE)
    return cxr__store_fail (store, error, "query");
  return TRUE;
}

static gboolean
read_only_refusal (CxrStore *store, const char *what, GError **error)
{
  g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
               "%s: opened read-only: %s is not allowed (use --write to change the store)",
               store->path, what);
  return FALSE;
}

/**
 * cxr_store_query:
 * Runs every statement of @sql in turn, handing each one's column names
 * and rows to @handler; stops at the first that fails. A store opened
 * read-only answers every statement that would write with an error.
 */
gboolean
cxr_store_query (CxrStore *store, const char *sql, const CxrQueryHandler *handler, gpointer data,
                 GError **error)
{
  g_return_val_if_fail (store != NULL && sql != NULL && handler != NULL, FALSE);
  while (*sql)
    {
      sqlite3_stmt *st = NULL;
      const char *tail = NULL;
      store->denied[0] = '\0';
      if (sqlite3_prepare_v2 (store->db, sql, -1, &st, &tail) != SQLITE_OK)
        {
          if (store->denied[0])
            return read_only_refusal (store, store->denied, error);
          return cxr__store_fail (store, error, "query");
        }
      sql = tail;
      if (st == NULL) /* whitespace or a comment */
        continue;
      if ((store->flags & CXR_STORE_READ_ONLY) && !sqlite3_stmt_readonly (st))
        {
          sqlite3_finalize (st);
          return read_only_refusal (store, "a statement that writes", error);
        }
      gboolean ok = query_statement (store, st, handler, data, error);
      sqlite3_finalize (st);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}
