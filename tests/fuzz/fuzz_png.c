/* SPDX-License-Identifier: MIT
 *
 * Fuzz entry point: PNG decoding (cxr_image_decode), as ingest meets a
 * file, under limits small enough that any input is decoded in memory.
 */
#include <stddef.h>
#include <stdint.h>

#include "cxr/cxr.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  CxrImageLimits lim = { 4096, 4096, 64u << 20 };
  CxrImageInfo info;
  CxrImage *im = NULL;
  if (cxr_image_decode ("fuzz.png", data, size, &lim, &info, &im, NULL))
    cxr_image_free (im);
  return 0;
}
