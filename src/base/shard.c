/* SPDX-License-Identifier: MIT
 *
 * Which shard a patient belongs to (include/cxr/shard.h).
 */
#include <stdlib.h>

#include "cxr/error.h"
#include "cxr/shard.h"
#include "shard-private.h"

/* The largest N accepted: more shards than that is a typo. */
#define MAX_SHARDS 100000

/**
 * cxr_shard_parse:
 * @text: "K/N", 1 <= K <= N
 *
 * Returns: %FALSE with @error naming what is wrong.
 */
gboolean
cxr_shard_parse (const char *text, CxrShard *shard, GError **error)
{
  char *end = NULL;
  guint64 k = 0, n = 0;
  gboolean ok = text != NULL && g_ascii_isdigit (*text);
  if (ok)
    {
      k = g_ascii_strtoull (text, &end, 10);
      ok = *end == '/' && g_ascii_isdigit (end[1]);
    }
  if (ok)
    {
      n = g_ascii_strtoull (end + 1, &end, 10);
      ok = *end == '\0' && n >= 1 && n <= MAX_SHARDS && k >= 1 && k <= n;
    }
  if (!ok)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "shard '%s': expected K/N with 1 <= K <= N <= %d (e.g. 3/8)", text ? text : "",
                   MAX_SHARDS);
      return FALSE;
    }
  shard->k = (guint) k;
  shard->n = (guint) n;
  return TRUE;
}

/**
 * cxr_patient_shard:
 * Returns: the shard (1..@n) of @patient_id: FNV-1a 64 of its bytes,
 * modulo @n, plus one; 1 when @n is 0 or 1.
 */
guint
cxr_patient_shard (const char *patient_id, guint n)
{
  return cxr__patient_shard (patient_id, n);
}

/**
 * cxr_shard_contains:
 * @shard: (nullable): %NULL or n = 0 holds every patient
 */
gboolean
cxr_shard_contains (const CxrShard *shard, const char *patient_id)
{
  return shard == NULL || shard->n == 0 || cxr_patient_shard (patient_id, shard->n) == shard->k;
}
