/* SPDX-License-Identifier: MIT
 *
 * Difference maps: what the tests reach inside (diff.c).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void cxr__diff_scalar (gboolean scalar);

G_END_DECLS
