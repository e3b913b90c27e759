#!/bin/sh
# SPDX-License-Identifier: MIT
# A cohort split by patient (--shard K/N), each shard ingested and
# analysed into its own store, then merged: the merged store holds the
# same rows as the store built in one go (registrations, maps, pair
# signals, predictions, lung fields, limits, flags; up to ids and runs).
# The cohort is three of sample/'s patients (1, 2633, 10384: 12 films;
# 1543's 8 are left out to keep the test quick under ASan on a loaded
# machine) plus a copy of them under new patient ids and film names
# (tools/replicate_manifest.py), so the calibration must count each film's
# content once.
set -eu
# the store's own limits from its few films, as before reference limits existed:
# this test checks what flags do, and the sample alone raises none against
# the reference (tests/cli/limits.sh)
export CXRTRACK_REFERENCE_LIMITS=
: "${CXRTRACK:?}"
X=$CXRTRACK
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export CXR_NO_PROGRESS=1
fail() { echo "FAIL: $*" >&2; exit 1; }
q() { "$X" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -1; }

mkdir -p "$T/cohort"
python3 "$SRC/tools/replicate_manifest.py" "$SRC/sample/manifest.csv" 1 \
  | awk -F, '$2 != "1543" && $2 != "r01_1543"' > "$T/cohort/manifest.csv"
M=$T/cohort/manifest.csv

"$X" ingest --db "$T/one.sqlite" --manifest "$M" > "$T/log" 2>&1 || { cat "$T/log"; fail ingest; }
"$X" analyze --db "$T/one.sqlite" >> "$T/log" 2>&1 || { cat "$T/log"; fail analyze; }
[ "$(q "$T/one.sqlite" "SELECT count(*) FROM scans WHERE status = 'ok'")" = 24 ] || fail "cohort size"
# the calibration counts the copies' films once
[ "$(q "$T/one.sqlite" "SELECT max(n_copies) FROM retest_limits")" -le 16 ] \
  || fail "calibrated on copies of the same films: $(q "$T/one.sqlite" "SELECT max(n_copies) FROM retest_limits")"

N=3
for k in 1 2 3; do
  "$X" ingest --db "$T/s$k.sqlite" --manifest "$M" --shard $k/$N > "$T/i$k" 2>&1 || { cat "$T/i$k"; fail "ingest shard $k"; }
  grep -q "rows of other shards' patients (not read)" "$T/i$k" || { cat "$T/i$k"; fail "shard $k count"; }
  "$X" analyze --db "$T/s$k.sqlite" --no-flags > "$T/a$k" 2>&1 || { cat "$T/a$k"; fail "analyze shard $k"; }
  grep -q "not flagged here (--no-flags" "$T/a$k" || fail "--no-flags not said"
  [ "$(q "$T/s$k.sqlite" "SELECT count(*) FROM progression_flags")" = 0 ] || fail "shard $k flagged"
  [ "$(q "$T/s$k.sqlite" "SELECT count(*) FROM patients WHERE patient_shard(patient_id, $N) <> $k")" = 0 ] \
    || fail "shard $k holds another shard's patient"
done
n=0; for k in 1 2 3; do n=$((n + $(q "$T/s$k.sqlite" "SELECT count(*) FROM scans"))); done
[ $n = 24 ] || fail "shards hold $n films, not 24"
[ "$(q "$T/s1.sqlite" "SELECT count(*) FROM scans")" -gt 0 ] && [ "$(q "$T/s2.sqlite" "SELECT count(*) FROM scans")" -gt 0 ] \
  || fail "a shard is empty: the test would prove little"

# a merge stopped after the first shard, then run again over all three
"$X" merge --db "$T/m.sqlite" "$T/s1.sqlite" > "$T/m1" 2>&1 || { cat "$T/m1"; fail "merge 1"; }
"$X" merge --db "$T/m.sqlite" "$T/s1.sqlite" "$T/s2.sqlite" "$T/s3.sqlite" > "$T/m2" 2>&1 || { cat "$T/m2"; fail "merge 2"; }
grep -q "s1.sqlite: unchanged since it was merged: skipped" "$T/m2" || { cat "$T/m2"; fail "s1 not skipped"; }
sh "$SRC/tools/store_rows.sh" "$X" "$T/one.sqlite" > "$T/one.rows"
sh "$SRC/tools/store_rows.sh" "$X" "$T/m.sqlite" > "$T/m.rows"
diff "$T/one.rows" "$T/m.rows" > "$T/diff" || { head -20 "$T/diff"; fail "merged store differs from the one built in one go"; }
[ "$(grep -c . "$T/one.rows")" -gt 1000 ] || fail "too few rows compared"
[ "$(q "$T/m.sqlite" "SELECT count(*) FROM progression_flags")" -gt 0 ] || fail "no flags after merge"
# every shard's runs are kept, and the merge's own
[ "$(q "$T/m.sqlite" "SELECT count(*) FROM runs WHERE command LIKE 'ingest%'")" = 3 ] || fail "shard runs"
[ "$(q "$T/m.sqlite" "SELECT count(*) FROM runs WHERE command = 'merge'")" = 2 ] || fail "merge runs"

# merging again changes nothing
"$X" merge --db "$T/m.sqlite" "$T/s1.sqlite" "$T/s2.sqlite" "$T/s3.sqlite" > "$T/m3" 2>&1 || { cat "$T/m3"; fail "merge 3"; }
[ "$(grep -c "unchanged since it was merged: skipped" "$T/m3")" = 3 ] || { cat "$T/m3"; fail "not idempotent"; }
"$X" sql --db "$T/m.sqlite" --write "DELETE FROM merged_stores" > /dev/null
"$X" merge --db "$T/m.sqlite" --no-analyze "$T/s1.sqlite" "$T/s2.sqlite" "$T/s3.sqlite" > "$T/m4" 2>&1 || { cat "$T/m4"; fail "merge 4"; }
sh "$SRC/tools/store_rows.sh" "$X" "$T/m.sqlite" > "$T/m4.rows"
diff "$T/one.rows" "$T/m4.rows" > /dev/null || fail "merging the same shards twice changed rows"
[ "$(q "$T/m.sqlite" "SELECT count(*) FROM scans")" = 24 ] || fail "duplicate films after a second merge"

# the merged store's report of a copied patient finds its maps (every
# map's file is checked below)
"$X" report --db "$T/m.sqlite" --patient r01_2633 --out "$T/rep" > "$T/r" 2>&1 || { cat "$T/r"; fail report; }
! grep -q "missing" "$T/r" || { cat "$T/r"; fail "artifacts missing after merge"; }
[ "$(q "$T/m.sqlite" "SELECT count(*) FROM pair_changes WHERE map_path IS NOT NULL")" -gt 0 ] || fail "no maps"
for p in $("$X" sql --db "$T/m.sqlite" --format csv "SELECT map_path FROM pair_changes WHERE map_path IS NOT NULL" | tail -n +2 | tr -d '\r'); do
  [ -f "$T/m.sqlite.artifacts/$p" ] || fail "artifact $p not in the merged store's folder"
done

# a film of the same name and other content: reported, left out, exit 1
mkdir -p "$T/odd/images"
cp "$SRC/sample/images/00001543_000.png" "$T/odd/images/00000001_000.png"
printf 'patient_id,path,visit,view_position\n1,images/00000001_000.png,0,PA\n' > "$T/odd/manifest.csv"
"$X" ingest --db "$T/odd.sqlite" --manifest "$T/odd/manifest.csv" > /dev/null
if "$X" merge --db "$T/m.sqlite" --no-analyze "$T/odd.sqlite" > "$T/m5" 2>&1; then fail "conflict not an error"; fi
grep -q "film 00000001_000.png (patient 1) is in the store already with other content" "$T/m5" || { cat "$T/m5"; fail "conflict message"; }
[ "$(q "$T/m.sqlite" "SELECT sha256 = (SELECT sha256 FROM scans WHERE image_index = '00000001_000.png') FROM scans WHERE image_index = 'r01_00000001_000.png'")" = 1 ] \
  || fail "the store's film was replaced by the conflicting one"

# a shard flagged against the cohort's limits
"$X" analyze --db "$T/s1.sqlite" --limits-from "$T/one.sqlite" > "$T/a" 2>&1 || { cat "$T/a"; fail "--limits-from"; }
[ "$(q "$T/s1.sqlite" "SELECT group_concat(limit_value, ',') FROM (SELECT limit_value FROM retest_limits ORDER BY signal)")" \
  = "$(q "$T/one.sqlite" "SELECT group_concat(limit_value, ',') FROM (SELECT limit_value FROM retest_limits ORDER BY signal)")" ] \
  || fail "--limits-from did not copy the limits"
# calibrate derives the same limits again
"$X" calibrate --db "$T/m.sqlite" --force > "$T/c" 2>&1 || { cat "$T/c"; fail calibrate; }
grep -q "embedding_distance" "$T/c" || { cat "$T/c"; fail "calibrate prints no limits"; }
[ "$(q "$T/m.sqlite" "SELECT group_concat(limit_value, ',') FROM (SELECT limit_value FROM retest_limits ORDER BY signal)")" \
  = "$(q "$T/one.sqlite" "SELECT group_concat(limit_value, ',') FROM (SELECT limit_value FROM retest_limits ORDER BY signal)")" ] \
  || fail "calibrate --force derived other limits"
# a shard whose rows name an artifact outside its folder: not copied, said
cp "$T/s1.sqlite" "$T/bad.sqlite"
cp -r "$T/s1.sqlite.artifacts" "$T/bad.sqlite.artifacts"
"$X" sql --db "$T/bad.sqlite" --write \
  "UPDATE pair_changes SET map_path = '../../outside.map.png' WHERE (fixed_scan_id, moving_scan_id, kind) IN (SELECT fixed_scan_id, moving_scan_id, kind FROM pair_changes LIMIT 1)" > /dev/null
echo x > "$T/outside.map.png"
"$X" merge --db "$T/m2.sqlite" --no-analyze "$T/bad.sqlite" > "$T/m6" 2>&1 || { cat "$T/m6"; fail "merge of the bad shard"; }
grep -q "artifact name '../../outside.map.png' is not a plain relative name" "$T/m6" || { cat "$T/m6"; fail "escaping artifact path not said"; }
[ "$(q "$T/m2.sqlite" "SELECT count(*) FROM pair_changes WHERE map_path LIKE '%outside%'")" = 0 ] || fail "row kept its escaping path"
[ ! -e "$T/outside.map.png.merge-tmp" ] && [ "$(find "$T/m2.sqlite.artifacts" -name 'outside*' | wc -l)" = 0 ] || fail "escaping artifact copied"
# usage errors
if "$X" ingest --db "$T/x.sqlite" --manifest "$M" --shard 4/3 2> "$T/e"; then fail "--shard 4/3 accepted"; fi
grep -q "expected K/N with 1 <= K <= N" "$T/e" || fail "shard usage message"
echo "shards: ok"
