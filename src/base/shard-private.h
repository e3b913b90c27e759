/* SPDX-License-Identifier: MIT
 *
 * The shard hash alone, with no GLib, so that the sqlite3 extension
 * (sqlfunc.c built as cxrsql.so) computes the same patient_shard() as
 * cxrtrack --shard.
 */
#pragma once

#include <stdint.h>

/* FNV-1a 64 of @id's bytes, modulo @n, plus one; 1 when @n <= 1. */
static inline unsigned
cxr__patient_shard (const char *id, unsigned n)
{
  if (n <= 1)
    return 1;
  uint64_t h = UINT64_C (14695981039346656037);
  for (const unsigned char *p = (const unsigned char *) id; *p; p++)
    {
      h ^= *p;
      h *= UINT64_C (1099511628211);
    }
  return (unsigned) (h % n) + 1;
}
