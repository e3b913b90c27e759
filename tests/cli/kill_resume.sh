#!/bin/sh
# SPDX-License-Identifier: MIT
# Kill an ingest with SIGKILL part-way, check the store is consistent, and
# check that a rerun completes it without duplicates.
set -eu
: "${CXRTRACK:?}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
q() { "$CXRTRACK" sql --db "$DB" --format csv "$1" | tr -d '\r' | tail -1; }
N=399994  # 57,142 patients of 7 films each
awk -v n=$N 'BEGIN {
  print "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
  for (i = 0; i < n; i++) { p = int(i / 7); f = 6 - i % 7
    printf "%08d_%03d.png,Effusion|Mass,%d,%d,%d,F,PA,2048,2048,0.14,0.14\n", p, i % 7, f, p, 40 + f }
}' > "$T/big.csv"
DB="$T/k.sqlite"
"$CXRTRACK" ingest --db "$DB" --nih "$T/big.csv" >"$T/out1" 2>&1 &
PID=$!
i=0
while :; do
  n=$(q "SELECT count(*) FROM scans" 2>/dev/null || echo 0)
  [ "${n:-0}" -gt 0 ] && break
  i=$((i + 1)); [ $i -lt 400 ] || fail "no rows committed in 40 s"
  sleep 0.1
done
kill -9 $PID 2>/dev/null || true
wait $PID 2>/dev/null || true
[ "$(q "SELECT status FROM runs WHERE run_id = 1")" = running ] || fail "run finished before the kill; nothing tested"
[ "$(q "PRAGMA integrity_check")" = ok ] || fail "integrity_check after kill"
partial=$(q "SELECT count(*) FROM scans")
[ "$partial" -lt $N ] || fail "all rows stored before the kill"
[ $((partial % 2000)) -eq 0 ] || fail "partial batch visible: $partial rows"
# Findings were committed with their scans.
[ "$(q "SELECT count(*) FROM scan_findings")" = $((partial * 2)) ] || fail "findings out of step"

"$CXRTRACK" ingest --db "$DB" --nih "$T/big.csv" >"$T/out2" 2>&1 || { cat "$T/out2"; fail "rerun"; }
grep -q "missing $((N - partial)), invalid 0, unchanged $partial" "$T/out2" || { cat "$T/out2"; fail "rerun counts"; }
[ "$(q "SELECT count(*) FROM scans")" = $N ] || fail "row count after resume"
[ "$(q "SELECT count(DISTINCT image_index) FROM scans")" = $N ] || fail "duplicates"
[ "$(q "SELECT count(*) FROM scans WHERE visit IS NULL")" = 0 ] || fail "unordered scans left"
[ "$(q "SELECT sum(n_scans) FROM patients")" = $N ] || fail "patient counts"
# Follow-up # runs 6..0 against the suffix 0..6: visit must follow Follow-up #.
[ "$(q "SELECT count(*) FROM scans WHERE visit <> follow_up")" = 0 ] || fail "visit order"
echo "kill_resume: killed after $partial of $N rows; resumed to $N"
