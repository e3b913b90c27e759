#!/bin/sh
# SPDX-License-Identifier: MIT
# Hostile DICOM files, made fresh by tools/make_hostile_dicoms.py: deeply
# nested sequences (they crashed every reader: DCMTK parses sequences by
# recursion), millions of empty elements in a small deflated file and a
# few-KB file declaring 8192x8192x16 bits (gigabytes from kilobytes), and
# Patient IDs in ISO_IR 100 that differ in one letter (they became one
# patient). Each is refused by file with its reason, or read as itself,
# beside good films that are stored; nothing crashes, no run takes more
# than 300 MB.
set -eu
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
X=$CXRTRACK
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export CXR_NO_PROGRESS=1
fail() { echo "FAIL: $*" >&2; exit 1; }
C="$CXR_SOURCE_ROOT/tests/data/dicom"
q() { "$X" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -n +2; }
mkdir "$T/in"
/usr/bin/python3 "$CXR_SOURCE_ROOT/tools/make_hostile_dicoms.py" "$C/mono2_8.dcm" "$T/in"
cp "$C/mono2_16.dcm" "$C/rle.dcm" "$C/jpegls.dcm" "$T/in/"

# the folder: good films stored, each hostile file refused by name
/usr/bin/time -f %M -o "$T/rss" "$X" ingest --db "$T/d.sqlite" --dicom "$T/in" > "$T/out" 2>&1 \
  || { cat "$T/out"; fail "ingest"; }
[ "$(tail -1 "$T/rss")" -lt 300000 ] || fail "ingest took $(tail -1 "$T/rss") KB"
for why in "nested_undefined.dcm: sequences nested more than 32 deep" \
           "nested_defined.dcm: sequences nested more than 32 deep" \
           "many_elements.dcm: more than 100000 elements" \
           "jpegls_bomb.dcm: 8192x8192 pixels: over the 25000000 pixels" \
           "no_charset.dcm: Patient ID holds bytes outside ASCII and no Specific Character Set"; do
  grep -qF "$why" "$T/out" || { cat "$T/out"; fail "not reported: $why"; }
done
# two IDs that differ in a byte stay two patients, as real UTF-8
[ "$(q "$T/d.sqlite" "SELECT group_concat(hex(patient_id), ' ') FROM (SELECT DISTINCT patient_id FROM scans WHERE patient_id LIKE 'X%' ORDER BY 1)")" \
  = "58C3A9315A 58C3BC315A" ] || fail "Latin-1 IDs: $(q "$T/d.sqlite" "SELECT DISTINCT patient_id FROM scans")"
[ "$(q "$T/d.sqlite" "SELECT count(*) FROM scans WHERE status = 'ok' AND patient_id = 'P1'")" -ge 2 ] \
  || fail "the good films: $(q "$T/d.sqlite" "SELECT image_index, patient_id, status FROM scans")"

# every reader: a film named in a manifest, and one read alone
printf 'patient_id,path,visit\nA,%s,0\nA,%s,1\n' "$T/in/nested_undefined.dcm" "$T/in/mono2_16.dcm" > "$T/m.csv"
"$X" ingest --db "$T/m.sqlite" --manifest "$T/m.csv" > "$T/out" 2>&1 || true
grep -q "nested more than 32 deep" "$T/out" || { cat "$T/out"; fail "manifest: $(cat "$T/out")"; }
[ "$(q "$T/m.sqlite" "SELECT count(*) FROM scans WHERE status = 'ok'")" = 1 ] || fail "manifest: the good film"
for f in nested_undefined nested_defined many_elements jpegls_bomb; do
  rc=0
  /usr/bin/time -f %M -o "$T/rss" "$X" lungs "$T/in/$f.dcm" --out "$T/o.png" > "$T/out" 2>&1 || rc=$?
  [ $rc = 1 ] || { cat "$T/out"; fail "lungs $f: exit $rc"; }
  grep -q "$f.dcm: " "$T/out" || fail "lungs $f: $(cat "$T/out")"
  [ "$(tail -1 "$T/rss")" -lt 300000 ] || fail "lungs $f took $(tail -1 "$T/rss") KB"
done
# the pixels do not depend on the text: a film whose ID has no character
# set is still read alone
"$X" lungs "$T/in/no_charset.dcm" --out "$T/o.png" > /dev/null || fail "lungs of no_charset"
echo "hostile_dicom: ok"
