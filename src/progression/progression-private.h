/* SPDX-License-Identifier: MIT
 *
 * What the test-retest limits (calibrate.c) and the flags (progression.c)
 * share: cxrtrack's reference limits, used while a store has too few films
 * or visit pairs of its own.
 */
#pragma once

#include "cxr/progression.h"
#include "store-private.h"

G_BEGIN_DECLS

gboolean cxr__reference_load (const char *path, CxrReference *r, GError **error);
gboolean cxr__reference_for (const CxrProgressionOptions *o, const CxrModel *model, CxrReference *r,
                             GError **error);
void cxr__reference_clear (CxrReference *r);

G_END_DECLS
