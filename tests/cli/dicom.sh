#!/bin/sh
# SPDX-License-Identifier: MIT
# DICOM through the whole tool. sample/ written as DICOM (tools/
# make_test_dicoms.py: the manifest's patient, view, age, sex and spacing in
# the headers, a study date 30 days per visit, the films cycling through
# explicit VR, RLE, JPEG-LS, JPEG lossless and deflated), plus the test
# corpus's odd objects, is ingested with `ingest --dicom`: every film is
# stored, every other object is reported by file with its reason, a second
# run changes nothing, and `analyze` gives the same registrations and flags
# as the PNG sample (the flags' time axis is days instead of visits: the
# DICOM films have dates).
set -eu
# the store's own limits from its few films, as before reference limits existed:
# this test checks what flags do, and the sample alone raises none against
# the reference (tests/cli/limits.sh)
export CXRTRACK_REFERENCE_LIMITS=
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
S="$CXR_SOURCE_ROOT/sample"
C="$CXR_SOURCE_ROOT/tests/data/dicom"
(cd "$CXR_SOURCE_ROOT" && /usr/bin/python3 tools/make_test_dicoms.py sample "$S/manifest.csv" "$T/pacs")
mkdir "$T/pacs/odd"
for f in no_patient_id no_date sr truncated multiframe hand lateral j2k_labelled; do
  cp "$C/$f.dcm" "$T/pacs/odd/"
done
printf 'not a film\n' > "$T/pacs/odd/README.txt"
q() { "$CXRTRACK" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -n +2; }

"$CXRTRACK" ingest --db "$T/d.sqlite" --dicom "$T/pacs" > "$T/out" || { cat "$T/out"; fail "ingest"; }
# 20 films + lateral (ok); no_date, truncated, multi-frame, JPEG 2000 (invalid);
# no Patient ID, SR, hand, README (not stored)
grep -q "ok 21, missing 0, invalid 4, unchanged 0, rejected rows 4, conflicts 0" "$T/out" \
  || { cat "$T/out"; fail "ingest counts"; }
for why in "no_patient_id.dcm: no Patient ID (0010,0020)" "sr.dcm: no Pixel Data: not a film" \
           "hand.dcm: Body Part Examined 'HAND'" "README.txt: not a DICOM file" \
           "truncated.dcm: truncated" "multiframe.dcm: a multi-frame object (2 frames)" \
           "no_date.dcm: no Acquisition, Content, Study or Series Date" \
           "j2k_labelled.dcm: JPEG 2000"; do
  grep -qF "$why" "$T/out" || { cat "$T/out"; fail "not reported: $why"; }
done
[ "$(q "$T/d.sqlite" "SELECT count(*) FROM dicom_scans")" = 25 ] || fail "dicom_scans rows"
[ "$(q "$T/d.sqlite" "SELECT view_kind FROM scans s JOIN dicom_scans d USING (scan_id)
                      WHERE d.sop_instance_uid = s.image_index AND s.view_position = 'LL'")" = lateral ] \
  || fail "lateral film"
# the headers' spacing and pixel aspect are the manifest's
q "$T/d.sqlite" "SELECT s.patient_id, s.visit, s.pixel_spacing_mm, round(a.pixel_aspect, 9)
                   FROM scans s JOIN scan_pixel_aspect a USING (scan_id) WHERE s.status = 'ok'
                    AND s.view_kind <> 'lateral' ORDER BY 1, 2" > "$T/sd"
"$CXRTRACK" ingest --db "$T/p.sqlite" --manifest "$S/manifest.csv" > /dev/null
q "$T/p.sqlite" "SELECT s.patient_id, s.visit, s.pixel_spacing_mm, round(a.pixel_aspect, 9)
                   FROM scans s JOIN scan_pixel_aspect a USING (scan_id) ORDER BY 1, 2" > "$T/sp"
cmp -s "$T/sd" "$T/sp" || { diff "$T/sp" "$T/sd"; fail "spacing or aspect differ"; }
# no names in the store
"$CXRTRACK" sql --db "$T/d.sqlite" "SELECT * FROM scans" | grep -q "Test^Not^Stored" && fail "a name stored"
# a second run: nothing new
"$CXRTRACK" ingest --db "$T/d.sqlite" --dicom "$T/pacs" > "$T/out2"
grep -q "ok 0, missing 0, invalid 0, unchanged 25, rejected rows 4, conflicts 0" "$T/out2" \
  || { cat "$T/out2"; fail "second ingest"; }
# one window per store
"$CXRTRACK" ingest --db "$T/d.sqlite" --dicom "$T/pacs" --voi auto > "$T/out3" 2>&1 \
  && fail "a second --voi accepted"
grep -q "were ingested with --voi first" "$T/out3" || { cat "$T/out3"; fail "--voi message"; }

# the lateral film is not compared; the rest as the PNGs
"$CXRTRACK" analyze --db "$T/d.sqlite" > /dev/null
"$CXRTRACK" analyze --db "$T/p.sqlite" > /dev/null
R="SELECT f.patient_id, f.visit, m.visit, r.kind, r.status, r.dx_px, r.dy_px, r.angle_deg, r.scale
     FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id
     JOIN scans m ON m.scan_id = r.moving_scan_id ORDER BY 1, 2, 3, 4"
q "$T/d.sqlite" "$R" > "$T/rd"
q "$T/p.sqlite" "$R" > "$T/rp"
[ "$(wc -l < "$T/rp")" -gt 20 ] || fail "too few registrations"
/usr/bin/python3 - "$T/rd" "$T/rp" <<'PY' || fail "DICOM and PNG registrations differ"
import csv, sys
a = list(csv.reader(open(sys.argv[1])))
b = list(csv.reader(open(sys.argv[2])))
assert [r[:5] for r in a] == [r[:5] for r in b], (a, b)
for x, y in zip(a, b):
    assert all(abs(float(u) - float(v)) < 1e-3 for u, v in zip(x[5:], y[5:])), (x, y)
PY
F="SELECT patient_id, signal, view_kind, kind, n_visits, first_visit, last_visit, event_visit
     FROM progression_flags ORDER BY 1, 2, 3"
q "$T/d.sqlite" "$F" > "$T/fd"
q "$T/p.sqlite" "$F" > "$T/fp"
cmp -s "$T/fd" "$T/fp" || { diff "$T/fp" "$T/fd"; fail "DICOM and PNG flags differ"; }
grep -q "slow_progression\|acute_change\|unconfirmed_change" "$T/fd" || fail "no flag to compare"
[ "$(q "$T/d.sqlite" "SELECT DISTINCT time_axis FROM progression_flags")" = days ] || fail "time axis"
# Declared lengths beyond the file: refused naming the element, without
# DCMTK first asking for the length (3.5 GB) -- the reads run with
# allocations over 1 GB failing (ulimit -v; under AddressSanitizer, which
# reserves more address space than that, its own allocation cap).
if ldd "$CXRTRACK" | grep -q libasan; then
  lim() { ASAN_OPTIONS="${ASAN_OPTIONS:-}:allocator_may_return_null=1:max_allocation_size_mb=1024" "$@"; }
else
  lim() { (ulimit -v 1500000 && "$@"); }
fi
for f in huge_un huge_nested huge_deflated; do
  if lim "$CXRTRACK" lungs "$C/$f.dcm" --out "$T/m.png" 2> "$T/err"; then fail "$f read"; fi
  # DCMTK skipped the value and met the end of the file: it did not try
  # to allocate it (that ends in "Virtual Memory exhausted")
  grep -q "$f.dcm: truncated: the file ends inside the data set (element (0011,1010) declares 3758096384 bytes, the file has [0-9]*; I/O suspension or premature end of stream)" "$T/err" \
    || fail "$f: $(cat "$T/err")"
done
lim "$CXRTRACK" lungs "$C/mono2_8.dcm" --out "$T/m.png" > /dev/null || fail "a film under the allocation cap"
# ingest reads their headers alike (a deflated one through the same stream)
mkdir "$T/huge" && cp "$C/huge_un.dcm" "$C/huge_deflated.dcm" "$C/deflated.dcm" "$T/huge/"
lim "$CXRTRACK" ingest --db "$T/h.sqlite" --dicom "$T/huge" > "$T/hout" 2>&1 || true
grep -q "ok 1, missing 0, invalid 0" "$T/hout" || { cat "$T/hout"; fail "ingest of the oversized files"; }
for f in huge_un huge_deflated; do
  grep -q "$f.dcm: not a readable DICOM file (I/O suspension or premature end of stream)" "$T/hout" \
    || { cat "$T/hout"; fail "$f at ingest"; }
done
[ "$(q "$T/h.sqlite" "SELECT transfer_syntax FROM dicom_scans")" = 1.2.840.10008.1.2.1.99 ] \
  || fail "a deflated film's transfer syntax as the file has it"
# the Brixia score of a DICOM film is that of the PNG it was made from
"$CXRTRACK" severity --format json "$T/pacs/2633/00002633_016.dcm" "$S/images/00002633_016.png" > "$T/sev" \
  || fail "severity of a DICOM film"
/usr/bin/python3 - "$T/sev" <<'PY' || fail "severity: DICOM and PNG differ"
import json, sys
d, p = [json.loads(l) for l in open(sys.argv[1])]
assert d["status"] == "ok" and abs(d["global"] - p["global"]) < 0.05, (d, p)
assert all(abs(d["zones"][z] - p["zones"][z]) < 0.02 for z in "ABCDEF"), (d["zones"], p["zones"])
PY
# DCMTK is a module opened on first use (src/image/dicom-load.c): without
# it a DICOM film is refused by name with where the module was looked
# for, a PNG film is read as ever, and a command that meets no DICOM does
# not load DCMTK at all
CXRTRACK_DCMTK_MODULE="$T/none.so" "$CXRTRACK" severity "$T/pacs/2633/00002633_016.dcm" \
  > "$T/nomod" 2>&1 && fail "a DICOM film read without the DCMTK module"
grep -q "00002633_016.dcm: .*DICOM needs the module cxrtrack-dcmtk, which could not be opened ($T/none.so: " \
  "$T/nomod" || { cat "$T/nomod"; fail "the missing module's error"; }
CXRTRACK_DCMTK_MODULE="$T/none.so" "$CXRTRACK" severity "$S/images/00002633_016.png" > /dev/null \
  || fail "a PNG film without the DCMTK module"
if command -v ldd > /dev/null && ldd "$CXRTRACK" | grep -q libdcm; then
  fail "cxrtrack links DCMTK at start"
fi
echo "dicom: ok"
