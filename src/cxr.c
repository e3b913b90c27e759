/* SPDX-License-Identifier: MIT
 *
 * The library's version and process set-up.
 */
#include "cxr-config.h"

#include <stdlib.h> /* defines __GLIBC__ on glibc */
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cxr/cxr.h"

const char *
cxr_version (void)
{
  return CXR_VERSION;
}

/**
 * cxr_tune_allocator:
 * Process-wide glibc malloc settings for cxrtrack's workload; programs
 * call it first thing in main(). The library works without it, slower.
 *
 * - SQLite allocates and frees an ~87 KB statement journal for every
 *   INSERT into a table with foreign keys; glibc's default 128 KB trim
 *   threshold then returns it to the kernel each time, one brk() pair per
 *   row. Keeping 64 MB of freed heap makes the 112,120-row NIH ingest ten
 *   times faster (19.6 s -> 2.0 s, bench/ingest.sh).
 * - Registration, difference maps and inference allocate grids and
 *   activation arenas of 1-30 MB per pair or film: kept in the heap below
 *   a 32 MB mmap threshold, they are reused instead of being mapped and
 *   faulted in afresh each time (page faults are dear on virtual machines:
 *   they made the difference maps' time vary 12-68 ms per pair here).
 */
void
cxr_tune_allocator (void)
{
#ifdef __GLIBC__
  mallopt (M_TRIM_THRESHOLD, 64 << 20);
  mallopt (M_TOP_PAD, 16 << 20);
  mallopt (M_MMAP_THRESHOLD, 32 << 20);
#endif
}
