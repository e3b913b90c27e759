/* SPDX-License-Identifier: MIT
 *
 * The module cxrtrack-dcmtk's side of its boundary with libcxr
 * (dicom-private.h): the host's functions that the DICOM code calls,
 * given to it by cxr_dcmtk_init when the module is opened. Everything in
 * the module but its entry points is hidden, so these names do not meet
 * libcxr's own.
 */
#include "cxr/error.h"
#include "cxr/image.h"
#include "dicom-private.h"

static CxrDcmtkHost host;

CXR_DCMTK_EXPORT gboolean cxr_dcmtk_init (const CxrDcmtkHost *h);

/* Returns: FALSE when the module was built for another host. */
gboolean
cxr_dcmtk_init (const CxrDcmtkHost *h)
{
  if (h == NULL || h->abi != CXR_DCMTK_ABI)
    return FALSE;
  host = *h;
  return TRUE;
}

CxrImage *
cxr_image_new (int width, int height)
{
  return host.image_new (width, height);
}

void
cxr_image_free (CxrImage *image)
{
  host.image_free (image);
}

GQuark
cxr_error_quark (void)
{
  return host.error_quark ();
}
