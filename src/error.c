/* SPDX-License-Identifier: MIT
 *
 * The CXR_ERROR domain and the library version.
 */
#include "cxr-config.h"

#include "cxr/cxr.h"

G_DEFINE_QUARK (cxr - error - quark, cxr_error)

const char *
cxr_version (void)
{
  return CXR_VERSION;
}
