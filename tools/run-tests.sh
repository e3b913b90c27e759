#!/bin/sh
# SPDX-License-Identifier: MIT
# The whole suite: set up, then every test in ./build and again in
# ./build-asan (AddressSanitizer + UndefinedBehaviorSanitizer), the format
# check and the README's sample output. Ends with a line "tests: N
# passed, N failed".
set -u
cd "$(dirname "$0")/.."
tools/setup.sh --tests || exit 1
if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug >/dev/null || exit 1
fi
ninja -C build-asan >/dev/null || exit 1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
pass=0; fail=0
for b in build build-asan; do
  echo "== meson test in $b"
  meson test -C "$b" --print-errorlogs --num-processes 2
  rc=$?
  j="$b/meson-logs/testlog.json"
  p=$(grep -c '"result": "OK"' "$j"); f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR)"' "$j")
  pass=$((pass + p)); fail=$((fail + f))
  [ $rc -eq 0 ] || [ $f -gt 0 ] || fail=$((fail + 1))
done
# the house style, as .clang-format says (CI refuses a misformatted file),
# the layers of src/ (no folder calls or includes one above it), and the
# README's sample output as the main command prints it today
for check in tools/check-format.sh tools/check-layers.sh "tools/readme-sample.sh --check"; do
  if sh $check; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "tests: $pass passed, $fail failed"
[ $fail -eq 0 ]
