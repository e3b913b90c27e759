/* SPDX-License-Identifier: MIT
 *
 * The CXR_ERROR GError domain. Every recoverable failure in libcxr is
 * reported as a GError in this domain with one of these codes, and a
 * message that names the file, row or field at fault.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CXR_ERROR (cxr_error_quark ())

typedef enum {
  CXR_ERROR_FAILED,         /* anything not covered below */
  CXR_ERROR_INVALID_INPUT,  /* malformed CSV, PNG, argument */
  CXR_ERROR_LIMIT,          /* input larger than a configured limit */
  CXR_ERROR_IO,             /* read/write/open failed */
  CXR_ERROR_DB,             /* SQLite error */
  CXR_ERROR_SCHEMA_VERSION, /* database written by a newer cxrtrack */
  CXR_ERROR_MODEL,          /* bad model file */
  CXR_ERROR_CONFLICT,       /* same name, different content */
  CXR_ERROR_NETWORK,        /* a server did not answer, or answered wrong */
} CxrError;

GQuark cxr_error_quark (void);

G_END_DECLS
