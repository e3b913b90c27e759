#!/bin/sh
# SPDX-License-Identifier: MIT
# Every C source and header formatted as .clang-format says (the house
# style: GNU braces, a space before every parenthesis and after a cast).
# Prints the files that are not and exits 1; `sh tools/check-format.sh
# --fix` rewrites them.
set -u
cd "$(dirname "$0")/.."
files=$(git ls-files --cached --others --exclude-standard 'src/*.c' 'src/*.h' 'src/cli/*.c' 'src/cli/*.h' 'include/*.h' 'tests/*.c' \
  'tests/*.h' 'tests/fuzz/*.c' 'bench/*.c' 'src/*.cc')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i $files
  exit 0
fi
bad=0
for f in $files; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "format: $f"; bad=1; }
done
[ $bad -eq 0 ] && echo "format: ok"
exit $bad
