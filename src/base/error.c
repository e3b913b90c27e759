/* SPDX-License-Identifier: MIT
 *
 * The CXR_ERROR domain (error.h).
 */
#include "cxr/error.h"

G_DEFINE_QUARK (cxr - error - quark, cxr_error)
