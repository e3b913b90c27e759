/* SPDX-License-Identifier: MIT
 *
 * Fuzz entry point: the DICOM header path (cxr__dicom_read_header: the
 * structural walk, inflation, DCMTK's loadFile and the character set), as
 * ingest meets a file on disk. The input is written to a file of this
 * process's own and read back by path.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "dicom-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static char path[64];
  if (path[0] == '\0')
    snprintf (path, sizeof path, "/tmp/cxr-fuzz-header-%d.dcm", (int) getpid ());
  FILE *f = fopen (path, "wb");
  if (f == NULL)
    return 0;
  gboolean written = fwrite (data, 1, size, f) == size;
  if (fclose (f) != 0 || !written)
    return 0;
  CxrDicomMeta meta;
  if (cxr__dicom_read_header (path, 64u << 20, &meta, NULL))
    cxr__dicom_meta_clear (&meta);
  unlink (path);
  return 0;
}
