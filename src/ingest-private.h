/* SPDX-License-Identifier: MIT
 *
 * Internals of ingest shared with the store and the tests.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

const char *cxr__ingest_view_kind (const char *view_position);
gboolean cxr__ingest_parse_date (const char *text, char out[11]);

G_END_DECLS
