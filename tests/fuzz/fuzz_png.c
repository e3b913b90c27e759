/* SPDX-License-Identifier: MIT
 *
 * Fuzz entry point: PNG decoding (cxr_image_decode), as ingest meets a
 * file, under limits small enough that any input is decoded in memory.
 * Each input is decoded as it is and again with every whole chunk's CRC
 * made right, so that a mutation behind a CRC (a header field, the
 * compressed stream, a row's filter) reaches the decoder instead of being
 * stopped at the CRC check.
 */
#include <libdeflate.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cxr/cxr.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
decode (const uint8_t *data, size_t size)
{
  CxrImageLimits lim = { 4096, 4096, 64u << 20 };
  CxrImageInfo info;
  CxrImage *im = NULL;
  if (cxr_image_decode ("fuzz.png", data, size, &lim, &info, &im, NULL))
    cxr_image_free (im);
}

static uint32_t
be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  decode (data, size);
  if (size < 8 || size > (1u << 22))
    return 0;
  uint8_t *copy = g_memdup2 (data, size);
  size_t pos = 8;
  while (size - pos >= 12)
    {
      uint32_t n = be32 (copy + pos);
      if (n > size - pos - 12)
        break;
      uint32_t crc = (uint32_t) libdeflate_crc32 (0, copy + pos + 4, 4 + (size_t) n);
      uint8_t *c = copy + pos + 8 + n;
      c[0] = (uint8_t) (crc >> 24);
      c[1] = (uint8_t) (crc >> 16);
      c[2] = (uint8_t) (crc >> 8);
      c[3] = (uint8_t) crc;
      pos += 12 + (size_t) n;
    }
  if (memcmp (copy, data, size) != 0)
    decode (copy, size);
  g_free (copy);
  return 0;
}
