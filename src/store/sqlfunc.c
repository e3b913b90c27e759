/* SPDX-License-Identifier: MIT
 *
 * SQL functions: distances of embedding BLOBs (little-endian float32
 * vectors), and the shard of a patient:
 *   cosine_distance(a, b) = 1 - a.b / (|a| |b|)   (NULL if either is NULL
 *                                                  or has zero length)
 *   l2_distance(a, b)     = |a - b|
 *   patient_shard(id, n)  = the shard (1..n) of `cxrtrack --shard K/N`
 * Vectors of different lengths are an error. Registered on every
 * connection cxrtrack opens, and built as a loadable extension
 * (build/src/cxrsql.so) so that `sqlite3 db` users can `.load` it; this
 * file is compiled a second time with CXR_SQLITE_EXTENSION for that.
 */
#ifdef CXR_SQLITE_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
#else
#include <sqlite3.h>
#include "sqlfunc-private.h"
#endif
#include <math.h>
#include <string.h>

#include "shard-private.h"
#include "vector-private.h"

/* Reads both vectors; returns their length, or -1 after reporting. */
static int
vectors (sqlite3_context *ctx, sqlite3_value **argv, const unsigned char **a,
         const unsigned char **b)
{
  if (sqlite3_value_type (argv[0]) == SQLITE_NULL || sqlite3_value_type (argv[1]) == SQLITE_NULL)
    {
      sqlite3_result_null (ctx);
      return -1;
    }
  if (sqlite3_value_type (argv[0]) != SQLITE_BLOB || sqlite3_value_type (argv[1]) != SQLITE_BLOB)
    {
      sqlite3_result_error (ctx, "embedding distance: arguments must be float32 BLOBs", -1);
      return -1;
    }
  int na = sqlite3_value_bytes (argv[0]), nb = sqlite3_value_bytes (argv[1]);
  *a = sqlite3_value_blob (argv[0]);
  *b = sqlite3_value_blob (argv[1]);
  if (na != nb || na % 4 != 0)
    {
      sqlite3_result_error (ctx, "embedding distance: vectors of different lengths", -1);
      return -1;
    }
  return na / 4;
}

static float
get (const unsigned char *p, int i)
{
  unsigned int u = (unsigned int) p[4 * i] | (unsigned int) p[4 * i + 1] << 8
                   | (unsigned int) p[4 * i + 2] << 16 | (unsigned int) p[4 * i + 3] << 24;
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static void
cosine_distance (sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
  const unsigned char *a, *b;
  int n = vectors (ctx, argv, &a, &b);
  if (n < 0)
    return;
  /* the BLOBs as aligned floats in host order, for the shared definition */
  float *fa = sqlite3_malloc64 (2 * (sqlite3_uint64) (n > 0 ? n : 1) * sizeof (float));
  if (fa == NULL)
    {
      sqlite3_result_error_nomem (ctx);
      return;
    }
  float *fb = fa + n;
  for (int i = 0; i < n; i++)
    {
      fa[i] = get (a, i);
      fb[i] = get (b, i);
    }
  double d = cxr__cosine_distance (fa, fb, n, 1);
  sqlite3_free (fa);
  if (isnan (d))
    sqlite3_result_null (ctx);
  else
    sqlite3_result_double (ctx, d);
}

static void
l2_distance (sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
  const unsigned char *a, *b;
  int n = vectors (ctx, argv, &a, &b);
  if (n < 0)
    return;
  double s = 0;
  for (int i = 0; i < n; i++)
    {
      double d = (double) get (a, i) - get (b, i);
      s += d * d;
    }
  sqlite3_result_double (ctx, sqrt (s));
}

/* patient_shard(patient_id, n): the shard (1..n) cxrtrack --shard K/N
 * puts the patient in */
static void
patient_shard (sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
  (void) argc;
  const unsigned char *id = sqlite3_value_text (argv[0]);
  sqlite3_int64 n = sqlite3_value_int64 (argv[1]);
  if (id == NULL || sqlite3_value_type (argv[1]) == SQLITE_NULL)
    {
      sqlite3_result_null (ctx);
      return;
    }
  if (n < 1 || n > UINT32_MAX)
    {
      sqlite3_result_error (ctx, "patient_shard: n must be 1 or more", -1);
      return;
    }
  sqlite3_result_int64 (ctx, cxr__patient_shard ((const char *) id, (unsigned) n));
}

static int
register_all (sqlite3 *db)
{
  int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  int rc = sqlite3_create_function (db, "cosine_distance", 2, flags, NULL, cosine_distance, NULL,
                                    NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function (db, "l2_distance", 2, flags, NULL, l2_distance, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function (db, "patient_shard", 2, flags, NULL, patient_shard, NULL, NULL);
  return rc;
}

#ifdef CXR_SQLITE_EXTENSION
int sqlite3_cxrsql_init (sqlite3 *db, char **err, const sqlite3_api_routines *api);

int
sqlite3_cxrsql_init (sqlite3 *db, char **err, const sqlite3_api_routines *api)
{
  SQLITE_EXTENSION_INIT2 (api);
  return register_all (db);
}
#else
int
cxr__sql_register_functions (sqlite3 *db)
{
  return register_all (db);
}
#endif
