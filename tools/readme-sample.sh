#!/bin/sh
# SPDX-License-Identifier: MIT
# The README's sample output is this, not a copy by hand: runs the main
# command (tools/run-sample.sh) on a fresh store and puts what it prints
# between the README's sample-output markers. With --check, compares
# instead and fails if the README is stale; the timings, which vary from
# run to run, are masked in the comparison.
set -eu
cd "$(dirname "$0")/.."
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
CXR_OUT="$T/out" CXR_NO_INSTALL=1 sh tools/run-sample.sh 2>/dev/null | sed "s|$T/out|out|g" > "$T/now"
mask() { sed -E 's/[0-9]+(\.[0-9]+)? (s|ms)\b/N \2/g'; }
begin='<!-- sample-output: made by tools/readme-sample.sh -->'
end='<!-- /sample-output -->'
awk -v b="$begin" -v e="$end" '$0 == e {p = 0} p && !/^```/ {print} $0 == b {p = 1}' README.md > "$T/readme"
if [ "${1:-}" = "--check" ]; then
  if mask < "$T/readme" | cmp -s - "$(mask < "$T/now" > "$T/now.m"; echo "$T/now.m")"; then
    echo "readme-sample: ok"
    exit 0
  fi
  echo "readme-sample: README.md's sample output differs from what the main command prints now:"
  mask < "$T/readme" | diff - "$T/now.m" | head -20
  echo "(run sh tools/readme-sample.sh to update it)"
  exit 1
fi
awk -v b="$begin" -v e="$end" -v f="$T/now" '
  $0 == e {print "```"; while ((getline l < f) > 0) print l; print "```"; p = 0}
  !p {print}
  $0 == b {p = 1}' README.md > "$T/README.md"
cp "$T/README.md" README.md
echo "readme-sample: README.md updated"
