#!/bin/sh
# SPDX-License-Identifier: MIT
# Hostile stores, second round: shard stores and read-only stores as a
# careless or hostile user hands them over. Each case reproduces something
# cxrtrack once did (a report that embedded any file the user could read,
# a merge that replaced another patient's map, ran a shard's trigger, lost
# maps of names with "..", refused a read-only store or a reading PRAGMA,
# held a whole result table in memory) and checks what it must do instead.
set -eu
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
X=$CXRTRACK
T=$(mktemp -d); trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
chmod 755 "$T" # the cases run as another user read from here
export CXR_NO_PROGRESS=1
fail() { echo "FAIL: $*" >&2; exit 1; }
S="$CXR_SOURCE_ROOT/sample/images"
q() { "$X" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -n +2; }
# as an ordinary user (nobody), where this runs as root; else as we are
# memory figures are the plain build's: AddressSanitizer's shadow and
# quarantine hold hundreds of MB of their own
asan=0; ldd "$X" 2>/dev/null | grep -q libasan && asan=1
as_user() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; else "$@"; fi; }

# two one-patient shards, analysed without the classifier
mkdir "$T/in"
cp "$S"/00000001_00[012].png "$S"/00010384_03[345].png "$T/in/"
printf 'patient_id,path,visit,view_position\n1,00000001_000.png,0,PA\n1,00000001_001.png,1,PA\n1,00000001_002.png,2,PA\n' > "$T/in/a.csv"
printf 'patient_id,path,visit,view_position\n10384,00010384_033.png,0,PA\n10384,00010384_034.png,1,PA\n10384,00010384_035.png,2,PA\n' > "$T/in/b.csv"
for s in a b; do
  "$X" ingest --db "$T/$s.sqlite" --manifest "$T/in/$s.csv" > /dev/null
  "$X" analyze --db "$T/$s.sqlite" --no-model --no-flags > /dev/null
done
[ "$(q "$T/b.sqlite" "SELECT count(*) FROM pair_changes WHERE map_path IS NOT NULL")" -ge 2 ] || fail "too few maps to test with"

# a file no report may show: PNG bytes, so only the path check keeps it out
printf '\211PNG\r\n\032\nTOPSECRET-4f1c' > "$T/secret"
B64=$(/usr/bin/python3 -c "import base64,sys; print(base64.b64encode(open(sys.argv[1],'rb').read()).decode()[:24])" "$T/secret")

failed=""
run_case () {
  echo "== $1"
  if ! ( set -e; "$2" ); then failed="$failed
  $1"; fi
}

# 1. a row naming a file outside the artifacts folder, or a link inside it
case_outside () {
  cp "$T/b.sqlite" "$T/e.sqlite"; cp -r "$T/b.sqlite.artifacts" "$T/e.sqlite.artifacts"
  ln -s "$T/secret" "$T/e.sqlite.artifacts/pairs/link.png"
  "$X" sql --db "$T/e.sqlite" --write "
    UPDATE pair_changes SET overlay_path = '../../../../../../../../..$T/secret'
     WHERE fixed_scan_id = (SELECT min(fixed_scan_id) FROM pair_changes);
    UPDATE pair_changes SET overlay_path = 'pairs/link.png'
     WHERE (fixed_scan_id, moving_scan_id, kind) = (SELECT fixed_scan_id, moving_scan_id, kind FROM pair_changes
       WHERE fixed_scan_id <> (SELECT min(fixed_scan_id) FROM pair_changes) LIMIT 1)" > /dev/null
  # the store's own rows: the report reads neither file
  "$X" report --db "$T/e.sqlite" --patient 10384 --out "$T/re" > /dev/null 2>&1 || true
  ! grep -q "$B64" "$T/re/patient_10384.html" || fail "report embedded a file outside the artifacts"
  # merged: the rows come without the files, and the merge says so
  "$X" merge --db "$T/m1.sqlite" --no-analyze "$T/e.sqlite" > "$T/out" 2>&1 || { cat "$T/out"; fail "merge"; }
  grep -q "is not a plain relative name" "$T/out" || { cat "$T/out"; fail "outside path not said"; }
  grep -q "pairs/link.png: cannot open (a symbolic link is not followed)" "$T/out" || { cat "$T/out"; fail "link not said"; }
  [ "$(q "$T/m1.sqlite" "SELECT count(*) FROM pair_changes WHERE overlay_path IS NOT NULL")" = 0 ] \
    || fail "rows kept paths whose files were not copied: $(q "$T/m1.sqlite" "SELECT overlay_path FROM pair_changes")"
  [ ! -L "$T/m1.sqlite.artifacts/pairs/link.png" ] || fail "the link was copied"
  "$X" report --db "$T/m1.sqlite" --patient 10384 --out "$T/rm" > /dev/null 2>&1
  ! grep -q "$B64" "$T/rm/patient_10384.html" || fail "report of the merged store embedded the file"
  # an oversized artifact is not read whole
  cp "$T/b.sqlite" "$T/big.sqlite"; mkdir -p "$T/big.sqlite.artifacts/pairs"
  truncate -s 200M "$T/big.sqlite.artifacts/pairs/huge.png"
  "$X" sql --db "$T/big.sqlite" --write "UPDATE pair_changes SET overlay_path = 'pairs/huge.png'" > /dev/null
  /usr/bin/time -f %M -o "$T/rss" "$X" report --db "$T/big.sqlite" --patient 10384 --out "$T/rb" > /dev/null 2>&1
  [ $asan = 1 ] || [ "$(tail -1 "$T/rss")" -lt 150000 ] || fail "report of a 200 MB artifact took $(tail -1 "$T/rss") KB"
}

# 4. a shard row naming another shard's map: no file replaced
case_overwrite () {
  "$X" merge --db "$T/m4.sqlite" --no-analyze "$T/a.sqlite" > /dev/null
  victim=$(q "$T/m4.sqlite" "SELECT map_path FROM pair_changes WHERE map_path IS NOT NULL ORDER BY 1 LIMIT 1")
  before=$(sha256sum < "$T/m4.sqlite.artifacts/$victim")
  cp "$T/b.sqlite" "$T/o.sqlite"; cp -r "$T/b.sqlite.artifacts" "$T/o.sqlite.artifacts"
  own=$(q "$T/o.sqlite" "SELECT map_path FROM pair_changes WHERE map_path IS NOT NULL ORDER BY 1 LIMIT 1")
  mkdir -p "$(dirname "$T/o.sqlite.artifacts/$victim")"
  cp "$T/o.sqlite.artifacts/$own" "$T/o.sqlite.artifacts/$victim"
  "$X" sql --db "$T/o.sqlite" --write "UPDATE pair_changes SET map_path = '$victim' WHERE map_path = '$own'" > /dev/null
  "$X" merge --db "$T/m4.sqlite" --no-analyze "$T/o.sqlite" > "$T/out" 2>&1 || { cat "$T/out"; fail "merge"; }
  [ "$(sha256sum < "$T/m4.sqlite.artifacts/$victim")" = "$before" ] || fail "another patient's map was replaced"
  grep -q "artifact '$victim': named by rows of two pairs or films" "$T/out" || { cat "$T/out"; fail "not said"; }
  [ "$(q "$T/m4.sqlite" "SELECT count(*) FROM pair_changes c JOIN scans s ON s.scan_id = c.fixed_scan_id
        WHERE c.map_path = '$victim' AND s.patient_id = '10384'")" = 0 ] || fail "patient 10384's row names patient 1's map"
}

# 6. a merge source is read, never written: a trigger stored in it does
# not run, and a source on a read-only folder merges
case_readonly_source () {
  cp "$T/b.sqlite" "$T/t.sqlite"; cp -r "$T/b.sqlite.artifacts" "$T/t.sqlite.artifacts"
  "$X" sql --db "$T/t.sqlite" --write "
    INSERT INTO runs (command, argv, version, started_at, status) VALUES ('ingest', 'x', '0', 'now', 'running');
    CREATE TRIGGER wipe AFTER UPDATE ON runs BEGIN DELETE FROM pair_change_regions; END;
    CREATE TRIGGER wipe2 AFTER INSERT ON merged_stores BEGIN DELETE FROM pair_change_regions; END" > /dev/null
  n=$(q "$T/t.sqlite" "SELECT count(*) FROM pair_change_regions")
  [ "$n" -gt 0 ] || fail "nothing to lose"
  sum=$(sha256sum < "$T/t.sqlite")
  "$X" merge --db "$T/m6.sqlite" --no-analyze "$T/t.sqlite" > "$T/out" 2>&1 || { cat "$T/out"; fail "merge"; }
  [ "$(q "$T/t.sqlite" "SELECT count(*) FROM pair_change_regions")" = "$n" ] || fail "the shard's trigger ran"
  [ "$(sha256sum < "$T/t.sqlite")" = "$sum" ] || fail "the source was written"
  [ "$(q "$T/m6.sqlite" "SELECT count(*) FROM pair_change_regions")" = "$n" ] || fail "rows not merged"
  # a source in a folder this user cannot write to, merged by that user
  mkdir "$T/rod" "$T/own6"
  cp "$T/b.sqlite" "$T/rod/s.sqlite"; cp -r "$T/b.sqlite.artifacts" "$T/rod/s.sqlite.artifacts"
  chmod -R a+rX "$T/rod"; chmod a-w "$T/rod"
  [ "$(id -u)" != 0 ] || chown 65534 "$T/own6"
  as_user "$X" merge --db "$T/own6/m.sqlite" --no-analyze "$T/rod/s.sqlite" > "$T/out" 2>&1 \
    || { cat "$T/out"; fail "a source in a read-only folder"; }
  [ "$(q "$T/own6/m.sqlite" "SELECT count(*) FROM scans")" = 3 ] || fail "read-only source: films"
  # a source written by an older cxrtrack is refused, not migrated
  cp "$T/b.sqlite" "$T/old.sqlite"
  "$X" sql --db "$T/old.sqlite" --write "PRAGMA user_version = 18" > /dev/null 2>&1 || \
    /usr/bin/python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version=18'); c.commit()" "$T/old.sqlite"
  if "$X" merge --db "$T/m6.sqlite" --no-analyze "$T/old.sqlite" > "$T/out" 2>&1; then fail "old source merged"; fi
  grep -q "merge source $T/old.sqlite: schema version 18" "$T/out" || { cat "$T/out"; fail "old source message"; }
  # a corrupt source is named as the source
  head -c 8192 "$T/b.sqlite" > "$T/bad.sqlite"; head -c 40000 /dev/urandom >> "$T/bad.sqlite"
  if "$X" merge --db "$T/m6.sqlite" --no-analyze "$T/bad.sqlite" > "$T/out" 2>&1; then fail "corrupt source merged"; fi
  grep -q "bad.sqlite" "$T/out" || { cat "$T/out"; fail "the corrupt source is not named"; }
  # the store itself through a link: refused at once, not after a wait
  ln -s "$T/m6.sqlite" "$T/m6-link.sqlite"
  if timeout 10 "$X" merge --db "$T/m6.sqlite" --no-analyze "$T/m6-link.sqlite" > "$T/out" 2>&1; then fail "merged into itself"; fi
  grep -q "cannot be merged into itself" "$T/out" || { cat "$T/out"; fail "itself through a link"; }
}

# 7. film names with ".." inside keep their maps
case_dots () {
  mkdir "$T/d"
  cp "$S/00000001_000.png" "$T/d/scan..v0.png"; cp "$S/00000001_001.png" "$T/d/scan..v1.png"
  printf 'patient_id,path,visit,image_index,view_position\nP..1,scan..v0.png,0,scan..v0.png,PA\nP..1,scan..v1.png,1,scan..v1.png,PA\n' > "$T/d/m.csv"
  "$X" ingest --db "$T/d.sqlite" --manifest "$T/d/m.csv" > /dev/null
  "$X" analyze --db "$T/d.sqlite" --no-model --no-flags > /dev/null
  n=$(q "$T/d.sqlite" "SELECT count(DISTINCT map_path) FROM pair_changes WHERE map_path LIKE '%..%'")
  [ "$n" -ge 1 ] || fail "no map name with '..' to test: $(q "$T/d.sqlite" "SELECT map_path FROM pair_changes")"
  "$X" merge --db "$T/m7.sqlite" --no-analyze "$T/d.sqlite" > "$T/out" 2>&1 || { cat "$T/out"; fail "merge"; }
  ! grep -q "not a plain relative name" "$T/out" || { cat "$T/out"; fail "'..' inside a name refused"; }
  [ "$(q "$T/m7.sqlite" "SELECT count(DISTINCT map_path) FROM pair_changes WHERE map_path LIKE '%..%'")" = "$n" ] || fail "maps lost"
  for p in $(q "$T/m7.sqlite" "SELECT DISTINCT map_path FROM pair_changes WHERE map_path IS NOT NULL"); do
    [ -f "$T/m7.sqlite.artifacts/$p" ] || fail "$p not copied"
  done
}

# 9. sql reads a store in a read-only folder, and the reading PRAGMAs
case_sql_readonly () {
  mkdir "$T/ro" "$T/own9"; cp "$T/a.sqlite" "$T/ro/s.sqlite"; chmod -R a+rX "$T/ro"; chmod a-w "$T/ro"
  [ "$(id -u)" != 0 ] || chown 65534 "$T/own9"
  as_user "$X" sql --db "$T/ro/s.sqlite" --format csv "SELECT count(*) FROM scans" > "$T/out" 2> "$T/err" \
    || fail "read-only folder: $(cat "$T/err")"
  [ "$(tr -d '\r' < "$T/out" | tail -1)" = 3 ] || fail "read-only folder: $(cat "$T/out")"
  grep -q "read as immutable" "$T/err" || fail "no note: $(cat "$T/err")"
  as_user "$X" report --db "$T/ro/s.sqlite" --patient 1 --out "$T/own9/r9" > /dev/null 2> "$T/err" \
    || fail "report of a store in a read-only folder: $(cat "$T/err")"
  [ "$(q "$T/a.sqlite" "SELECT group_concat(name, '|') FROM (SELECT name FROM pragma_table_info('scans') LIMIT 3)")" \
    = "scan_id|image_index|patient_id" ] || fail "pragma_table_info: $(q "$T/a.sqlite" "SELECT name FROM pragma_table_info('scans')" 2>&1)"
  # still no write through it
  if "$X" sql --db "$T/a.sqlite" "UPDATE sqlite_master SET sql = 'x'" > /dev/null 2>&1; then fail "schema written"; fi
}

# 10. sql: fts3_tokenizer's pointer, bounded memory, --timeout
case_sql_limits () {
  if "$X" sql --db "$T/a.sqlite" "SELECT hex(fts3_tokenizer('simple'))" > "$T/out" 2> "$T/err"; then
    fail "fts3_tokenizer answered: $(cat "$T/out")"
  fi
  grep -q "fts3_tokenizer() is not allowed" "$T/err" || fail "$(cat "$T/err")"
  /usr/bin/time -f %M -o "$T/rss" "$X" sql --db "$T/a.sqlite" \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 400000) SELECT x, printf('%0200d', x) FROM c" > "$T/out"
  [ "$(wc -l < "$T/out")" = 400002 ] || fail "table rows: $(wc -l < "$T/out")"
  [ $asan = 1 ] || [ "$(tail -1 "$T/rss")" -lt 60000 ] || fail "the table format held its rows: $(tail -1 "$T/rss") KB"
  t0=$(date +%s)
  if "$X" sql --db "$T/a.sqlite" --timeout 1 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c" > /dev/null 2> "$T/err"; then
    fail "an endless query ended well"
  fi
  [ $(($(date +%s) - t0)) -le 10 ] || fail "--timeout 1 took $(($(date +%s) - t0)) s"
  grep -q "stopped after 1 s (the time limit)" "$T/err" || fail "$(cat "$T/err")"
}

# 10. a run that fails because the disk is full is not left 'running'
# (the store on a small tmpfs of its own, in a private mount namespace:
# analyze fills it with maps; it kept no room to record its own end)
case_disk_full () {
  if [ "$(id -u)" != 0 ] || ! unshare -m true 2> /dev/null; then
    echo "   (skipped: a tmpfs of one's own needs root and unshare -m)"
    return 0
  fi
  for size in 700k 900k; do
    mkdir "$T/full$size"
    unshare -m sh -c '
      mount -t tmpfs -o size=$1 tmpfs "$2" || exit 3
      "$3" ingest --db "$2/s.sqlite" --manifest "$4" > "$2.ingest" 2>&1
      "$3" analyze --db "$2/s.sqlite" --no-model > "$2.analyze" 2>&1; echo $? > "$2.rc"
      "$3" sql --db "$2/s.sqlite" --format csv "SELECT command, status FROM runs" > "$2.runs" 2>&1' \
      sh "$size" "$T/full$size" "$X" "$CXR_SOURCE_ROOT/sample/manifest.csv" || fail "tmpfs of $size"
    [ "$(cat "$T/full$size.rc")" != 0 ] || fail "$size: analyze did not run out of room: $(cat "$T/full$size.analyze")"
    ! grep -q running "$T/full$size.runs" || fail "$size: a run left running: $(cat "$T/full$size.runs")"
    grep -q "analyze,failed" "$T/full$size.runs" || fail "$size: the failed run: $(cat "$T/full$size.runs")"
  done
}

run_case "a store's rows never make a report read outside its artifacts" case_outside
run_case "a merge never replaces another row's file" case_overwrite
run_case "a merge source is read-only" case_readonly_source
run_case "names with '..' inside keep their maps" case_dots
run_case "sql reads read-only stores and the reading PRAGMAs" case_sql_readonly
run_case "sql: no pointers, bounded memory, a time limit" case_sql_limits
run_case "a run failed by a full disk is not left running" case_disk_full

if [ -n "$failed" ]; then
  echo "hostile_stores: failed:$failed" >&2
  exit 1
fi
echo "hostile_stores: ok"
