/* SPDX-License-Identifier: MIT
 *
 * Fuzz entry point: a model file (cxr_safetensors_open, then
 * cxr_model_load with its metadata and architecture checks), read from
 * an in-memory file as the loaders read files.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cxr/cxr.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  int fd = memfd_create ("fuzz.safetensors", 0);
  if (fd < 0)
    return 0;
  if (write (fd, data, size) == (ssize_t) size)
    {
      char path[64];
      snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
      CxrSafetensors *st = cxr_safetensors_open (path, NULL);
      if (st)
        {
          cxr_safetensors_metadata (st, "architecture");
          cxr_safetensors_free (st);
          CxrModel *m = cxr_model_load (path, NULL);
          cxr_model_free (m);
        }
    }
  close (fd);
  return 0;
}
