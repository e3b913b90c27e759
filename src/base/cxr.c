/* SPDX-License-Identifier: MIT
 *
 * The library's version, process set-up, and numbers written as short as
 * they read back.
 */
#include "cxr-config.h"

#include <math.h>
#include <stdlib.h> /* defines __GLIBC__ on glibc */
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <cblas.h>

#include "cxr/cxr.h"

/* OpenBLAS's own (exported, not in cblas.h): stops its thread pool */
extern int blas_thread_shutdown_ (void) __attribute__ ((weak));

const char *
cxr_version (void)
{
  return CXR_VERSION;
}

/**
 * cxr_tune_threads:
 * OpenBLAS to one thread, its pool stopped. cxrtrack runs a patient per
 * core already (analyze --jobs), so BLAS threads would only compete with
 * them; and OpenBLAS starts its pool when the library loads, before
 * main(), whose idle threads spin in sched_yield: a single `cxrtrack
 * register` call spent 0.29-0.32 CPU-s with them, 0.14-0.15 without, on
 * this 2-core machine. Programs call it first thing in main(); with
 * $OPENBLAS_NUM_THREADS set, the user's choice stands.
 */
void
cxr_tune_threads (void)
{
  if (g_getenv ("OPENBLAS_NUM_THREADS"))
    return;
  openblas_set_num_threads (1);
  if (blas_thread_shutdown_)
    blas_thread_shutdown_ ();
}

const char *
cxr_format_double (double v, char *buf)
{
  for (int digits = 1; digits <= 17; digits++)
    {
      char fmt[8];
      g_snprintf (fmt, sizeof fmt, "%%.%dg", digits);
      g_ascii_formatd (buf, G_ASCII_DTOSTR_BUF_SIZE, fmt, v);
      if (!isfinite (v) || g_ascii_strtod (buf, NULL) == v)
        break;
    }
  return buf;
}

/**
 * cxr_json_shorten_numbers:
 * Rewrites each number of @json (outside strings) in its shortest form.
 *
 * Returns: (transfer full): the text.
 */
char *
cxr_json_shorten_numbers (const char *json)
{
  GString *out = g_string_sized_new (strlen (json));
  gboolean in_string = FALSE;
  for (const char *p = json; *p;)
    {
      if (in_string)
        {
          if (*p == '\\' && p[1])
            g_string_append_c (out, *p++);
          else if (*p == '"')
            in_string = FALSE;
          g_string_append_c (out, *p++);
          continue;
        }
      if (*p == '"')
        in_string = TRUE;
      if (*p == '-' || g_ascii_isdigit (*p))
        {
          char *end;
          double v = g_ascii_strtod (p, &end);
          char buf[G_ASCII_DTOSTR_BUF_SIZE];
          if (end > p && isfinite (v))
            {
              /* integers stay as they are written */
              gboolean integral = strcspn (p, ".eE,}] \n") >= (size_t) (end - p);
              if (integral)
                g_string_append_len (out, p, end - p);
              else
                g_string_append (out, cxr_format_double (v, buf));
              p = end;
              continue;
            }
        }
      g_string_append_c (out, *p++);
    }
  return g_string_free (out, FALSE);
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
#ifdef MADV_HUGEPAGE
  /* The main thread's heap grown by 46 MB at once (30 MB and the top
   * pad) and marked for huge pages, then freed (it stays: below the trim
   * threshold), so the grids and arenas carved from it later are faulted
   * in 2 MB at a time. A single `register` call touches ~44 MB once:
   * 11,100 page faults, about an eighth of its time, where the kernel's
   * transparent huge pages are on request only ("madvise"); with this
   * 3,400, and 180 -> 162 ms CPU (bench/register_call.py's pairs, best
   * of five, old and new alternated). Nothing is touched here; worker
   * threads' arenas are not affected (analyze faults little: 54,000 in
   * 36 CPU-s). */
  enum { PREFIX = 30 << 20, HUGE = 2 << 20 };
  char *p = malloc (PREFIX);
  if (p)
    {
      uintptr_t a = ((uintptr_t) p + HUGE - 1) & ~(uintptr_t) (HUGE - 1);
      /* to the heap's end: the top pad grown with it too */
      uintptr_t e = (uintptr_t) sbrk (0) & ~(uintptr_t) (HUGE - 1);
      /* only where the block came from the heap's top (not under a
       * sanitizer's or valgrind's allocator) */
      if (e > a && e - a <= 4 * (uintptr_t) PREFIX)
        madvise ((void *) a, e - a, MADV_HUGEPAGE);
      free (p);
    }
#endif
#endif
}

/**
 * cxr_running_installed:
 * Whether this process is the installed cxrtrack, not a program in a
 * build tree (the tests, the benchmarks, a cxrtrack being developed): the
 * installed one looks for its models and its DCMTK module where they are
 * installed first, any other where they were built, so that an older
 * install never answers for the code being built and tested. A process
 * that cannot read its own path counts as installed.
 */
gboolean
cxr_running_installed (void)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  return self == NULL || g_str_equal (self, CXR_BIN_INSTALLED);
}
