#!/bin/sh
# SPDX-License-Identifier: MIT
# A film stored upside down: patient 1543 of the sample (8 AP films) with
# its sixth film turned half a turn. analyze must find it (scans.orientation),
# fail its pairs with the reason instead of registering it as if upright,
# leave every other film unmarked, register the untouched pairs as before,
# and the report must say so. bench/orientation.py measures the same on
# the 196 series1024 films.
set -eu
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
X=$CXRTRACK
S=$CXR_SOURCE_ROOT/sample
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export CXR_NO_PROGRESS=1
fail() { echo "FAIL: $*" >&2; exit 1; }
q() { "$X" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -1; }
mkdir -p "$T/images"
head -1 "$S/manifest.csv" > "$T/m.csv"
grep '^1543,' "$S/manifest.csv" | sed "s|images/|$T/images/|" >> "$T/m.csv"
cp "$S"/images/00001543_*.png "$T/images/"
/usr/bin/python3 - "$T/images/00001543_005.png" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1])
im.transpose(Image.Transpose.ROTATE_180).save(sys.argv[1])
PY
"$X" ingest --db "$T/t.sqlite" --manifest "$T/m.csv" > /dev/null
"$X" analyze --db "$T/t.sqlite" > "$T/out" || { cat "$T/out"; fail analyze; }
grep -q "films stored upside down (their pairs failed, scans.orientation set): 1" "$T/out" || { cat "$T/out"; fail "not reported"; }
[ "$(q "$T/t.sqlite" "SELECT group_concat(image_index) FROM scans WHERE orientation = 'upside_down'")" = 00001543_005.png ] \
  || fail "marked: $(q "$T/t.sqlite" "SELECT group_concat(image_index) FROM scans WHERE orientation IS NOT NULL")"
# its pairs (as the later film) failed with the reason; the next film's
# previous pair names the earlier film as the one upside down
[ "$(q "$T/t.sqlite" "SELECT count(*) FROM registrations r JOIN scans m ON m.scan_id = r.moving_scan_id
      WHERE m.image_index = '00001543_005.png' AND r.status = 'failed' AND r.reason LIKE '%stored upside down%'")" = 2 ] \
  || fail "the turned film's pairs: $("$X" sql --db "$T/t.sqlite" "SELECT kind, status, reason FROM registrations r JOIN scans m ON m.scan_id = r.moving_scan_id WHERE m.image_index = '00001543_005.png'")"
[ "$(q "$T/t.sqlite" "SELECT count(*) FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id
      JOIN scans m ON m.scan_id = r.moving_scan_id WHERE f.image_index = '00001543_005.png'
      AND m.orientation IS NULL AND r.status = 'failed' AND r.reason LIKE 'the earlier film is stored upside down%'")" = 1 ] \
  || fail "the next film blamed for the turned one"
# the pairs that do not touch it register as they do with the film upright
"$X" ingest --db "$T/u.sqlite" --manifest "$S/manifest.csv" > /dev/null
"$X" analyze --db "$T/u.sqlite" > /dev/null
sel="SELECT group_concat(x, ' ') FROM (SELECT f.image_index || '>' || m.image_index || ':' || r.kind || ':'
       || r.status || ':' || round(r.dx_px, 3) AS x
     FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id JOIN scans m ON m.scan_id = r.moving_scan_id
     WHERE m.patient_id = '1543' AND f.image_index <> '00001543_005.png' AND m.image_index <> '00001543_005.png'
     ORDER BY 1)"
a=$(q "$T/t.sqlite" "$sel"); b=$(q "$T/u.sqlite" "$sel")
[ "$a" = "$b" ] || fail "untouched pairs changed: $a VS $b"
[ "$(q "$T/u.sqlite" "SELECT count(*) FROM scans WHERE orientation IS NOT NULL")" = 0 ] || fail "an upright sample film marked"
# the report says so
"$X" report --db "$T/t.sqlite" --patient 1543 --out "$T/r" > /dev/null
grep -q "stored upside down: its pairs are not registered" "$T/r/patient_1543.html" || fail "report does not say so"
"$X" report --db "$T/t.sqlite" --patient 1543 --out "$T/r" --format json > /dev/null
grep -q '"upside_down" : true' "$T/r/patient_1543.json" || grep -q '"upside_down": true' "$T/r/patient_1543.json" || fail "json"
# a store merged from it keeps the mark (the merged films are not
# analysed again: their pairs are there)
"$X" merge --db "$T/m.sqlite" "$T/t.sqlite" > /dev/null
[ "$(q "$T/m.sqlite" "SELECT group_concat(image_index) FROM scans WHERE orientation = 'upside_down'")" = 00001543_005.png ] \
  || fail "merge dropped the mark: $(q "$T/m.sqlite" "SELECT group_concat(image_index) FROM scans WHERE orientation IS NOT NULL")"
# the first film turned: it has no earlier film to be found by, so its
# next film lines up with it only turned. That film is upright and must not
# be blamed (the lung segmenter sees upright lungs in it, not in the first
# film turned back): the first film is the one marked.
mkdir -p "$T/first"
cp "$S"/images/00001543_*.png "$T/first/"
/usr/bin/python3 - "$T/first/00001543_000.png" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1])
im.transpose(Image.Transpose.ROTATE_180).save(sys.argv[1])
PY
head -1 "$S/manifest.csv" > "$T/f.csv"
grep '^1543,' "$S/manifest.csv" | sed "s|images/|$T/first/|" >> "$T/f.csv"
"$X" ingest --db "$T/f.sqlite" --manifest "$T/f.csv" > /dev/null
"$X" analyze --db "$T/f.sqlite" > "$T/out" || { cat "$T/out"; fail analyze; }
[ "$(q "$T/f.sqlite" "SELECT group_concat(image_index) FROM scans WHERE orientation = 'upside_down'")" = 00001543_000.png ] \
  || fail "first film turned; marked: $(q "$T/f.sqlite" "SELECT group_concat(image_index) FROM scans WHERE orientation IS NOT NULL")"
[ "$(q "$T/f.sqlite" "SELECT count(*) FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id
      WHERE f.image_index = '00001543_000.png' AND r.status = 'failed'
      AND r.reason LIKE 'the earlier film is stored upside down%'")" -ge 1 ] \
  || fail "the first film's pairs: $("$X" sql --db "$T/f.sqlite" "SELECT kind, status, reason FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id WHERE f.image_index = '00001543_000.png'")"
echo "orientation: ok"
