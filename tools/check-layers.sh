#!/bin/sh
# SPDX-License-Identifier: MIT
# The folders of src/ are layers (base, net, image, nn, register, change,
# severity, store, ingest, progression, analyze, report, pacs, then cli): a file
# may include the private headers, and call the functions, of its own
# folder and of the folders below it, never of one above. Checks both on
# the built folder libraries (nm: every symbol a folder uses that another
# folder defines) and on the sources (#include "X-private.h"). Prints each
# breach and exits 1 if there is one. [BUILD_DIR]
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
ORDER="base net image nn register change severity store ingest progression analyze report pacs"
rank() { i=0; for f in $ORDER; do [ "$f" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo 99; }
bad=0
# above FOLDER OTHER WHAT: a breach (said, counted) when OTHER is a folder above FOLDER
above() {
  [ -n "$2" ] && [ "$2" != "$1" ] && [ "$(rank "$2")" -gt "$(rank "$1")" ] || return 0
  echo "layers: $3 of src/$2, a folder above it"
  bad=1
}
# calls: symbols a folder's library leaves undefined and another folder's defines
for lib in "$B"/src/*/libcxr-*.a; do
  f=$(basename "$(dirname "$lib")")
  nm -g --defined-only "$lib" 2>/dev/null | awk -v f="$f" 'NF == 3 {print $3, f}'
done | sort -u > "$B/layers.defs"
for lib in "$B"/src/*/libcxr-*.a; do
  f=$(basename "$(dirname "$lib")")
  for sym in $(nm -u "$lib" 2>/dev/null | awk '{print $NF}' | sort -u); do
    above "$f" "$(awk -v s="$sym" '$1 == s {print $2; exit}' "$B/layers.defs")" "src/$f calls $sym"
  done
done
# includes of private headers
for file in src/*/*.c src/*/*.cc src/*/*.h; do
  f=$(basename "$(dirname "$file")")
  [ "$f" = cli ] && continue
  for h in $(sed -n 's/^#include "\([a-z-]*\(-private\|-db\)\.h\)".*/\1/p' "$file"); do
    above "$f" "$(basename "$(dirname "$(ls src/*/"$h" 2>/dev/null | head -1)")")" "$file includes $h"
  done
done
rm -f "$B/layers.defs"
[ $bad = 0 ] && echo "layers: ok ($ORDER)"
exit $bad
