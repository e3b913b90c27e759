/* SPDX-License-Identifier: MIT
 *
 * Fuzz entry point: DICOM decoding (cxr_image_decode through DCMTK,
 * image-dicom.cc), as ingest and analyze meet a file, with every window
 * choice, under limits small enough that any input is decoded in memory.
 */
#include <stddef.h>
#include <stdint.h>

#include "cxr/cxr.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  CxrImageLimits lim = { 2048, 2048, 64u << 20, (CxrVoi) (size % 3) };
  CxrImageInfo info;
  CxrImage *im = NULL;
  if (cxr_image_decode ("fuzz.dcm", data, size, &lim, &info, &im, NULL))
    cxr_image_free (im);
  return 0;
}
