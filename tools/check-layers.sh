#!/bin/sh
# SPDX-License-Identifier: MIT
# The folders of src/ are layers (base, image, nn, register, change,
# severity, store, ingest, progression, analyze, report, then cli): a file
# may include the private headers, and call the functions, of its own
# folder and of the folders below it, never of one above. Checks both on
# the built folder libraries (nm: every symbol a folder uses that another
# folder defines) and on the sources (#include "X-private.h"). Prints each
# breach and exits 1 if there is one. [BUILD_DIR]
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
ORDER="base image nn register change severity store ingest progression analyze report"
rank() { i=0; for f in $ORDER; do [ "$f" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo 99; }
bad=0
# calls: symbols a folder's library leaves undefined and another folder's defines
for lib in "$B"/src/*/libcxr-*.a; do
  f=$(basename "$(dirname "$lib")")
  nm -g --defined-only "$lib" 2>/dev/null | awk -v f="$f" 'NF == 3 {print $3, f}'
done | sort -u > "$B/layers.defs"
for lib in "$B"/src/*/libcxr-*.a; do
  f=$(basename "$(dirname "$lib")")
  rf=$(rank "$f")
  for sym in $(nm -u "$lib" 2>/dev/null | awk '{print $NF}' | sort -u); do
    g=$(awk -v s="$sym" '$1 == s {print $2; exit}' "$B/layers.defs")
    [ -n "$g" ] && [ "$g" != "$f" ] || continue
    if [ "$(rank "$g")" -gt "$rf" ]; then
      echo "layers: src/$f calls $sym of src/$g, a folder above it"
      bad=1
    fi
  done
done
# includes of private headers
for file in src/*/*.c src/*/*.cc src/*/*.h; do
  f=$(basename "$(dirname "$file")")
  [ "$f" = cli ] && continue
  rf=$(rank "$f")
  for h in $(sed -n 's/^#include "\([a-z-]*\(-private\|-db\)\.h\)".*/\1/p' "$file"); do
    g=$(basename "$(dirname "$(ls src/*/"$h" 2>/dev/null | head -1)")")
    [ -n "$g" ] && [ "$g" != "$f" ] || continue
    if [ "$(rank "$g")" -gt "$rf" ]; then
      echo "layers: $file includes $h of src/$g, a folder above it"
      bad=1
    fi
  done
done
rm -f "$B/layers.defs"
[ $bad = 0 ] && echo "layers: ok ($ORDER)"
exit $bad
