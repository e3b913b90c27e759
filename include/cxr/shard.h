/* SPDX-License-Identifier: MIT
 *
 * Shards: a cohort split by patient, so that N machines each build and
 * analyse a store of 1/N of the patients from the same inputs, and
 * `cxrtrack merge` joins the stores again. A patient's shard depends on
 * its id alone: FNV-1a (64 bit) of the id's UTF-8 bytes, modulo N, plus
 * one. The same function is SQL's patient_shard(patient_id, n).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  guint k; /* 1..n */
  guint n; /* 0: the whole cohort */
} CxrShard;

gboolean cxr_shard_parse (const char *text, CxrShard *shard, GError **error);
guint cxr_patient_shard (const char *patient_id, guint n);
gboolean cxr_shard_contains (const CxrShard *shard, const char *patient_id);

G_END_DECLS
