#!/bin/sh
# SPDX-License-Identifier: MIT
# The PACS round trip on patients the tests never see: the 196 NIH films
# of series1024 (46 patients, ../shared/data) written as DICOM
# (tools/make_test_dicoms.py sample: patient, view, age, sex and spacing in
# the headers, a date 30 days per follow-up, the transfer syntaxes
# cycling), stored into a local Orthanc with its DICOMweb plugin, then:
# pull (every frontal film stored once? a second pull fetches 0?),
# analyze, push (one SR per comparison, one overlay per map?), a second
# push (0 sent?), and every SR read by DCMTK's dsrdump. Prints counts and
# times, and the machine.
# Usage: bench/pacs_roundtrip.sh [build dir]   (needs orthanc orthanc-dicomweb, dcmtk)
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
X=$(realpath "$B/src/cxrtrack")
PY=/usr/bin/python3
. tools/orthanc.sh
D=../shared/data/nih
T=$(mktemp -d)
ORTHANC_PID=""
trap '[ -n "$ORTHANC_PID" ] && kill $ORTHANC_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
sh bench/machine.sh
q() { $X sql --db "$T/w.sqlite" --format csv "$1" | tr -d '\r"' | tail -n +2; }
secs() { echo "$(date +%s.%N) - $1" | bc | xargs printf '%.1f'; }

# a manifest of series1024, the spacing of each stored film from the
# original's size and spacing (Data_Entry_2017_v2020.csv.gz)
$PY - "$D" "$T/manifest.csv" << 'PYEOF'
import csv, gzip, os, sys
d, out = sys.argv[1], sys.argv[2]
meta = {}
with gzip.open(os.path.join(d, "Data_Entry_2017_v2020.csv.gz"), "rt", newline="") as f:
    for r in csv.reader(f):
        meta[r[0]] = r
rows = [r for r in csv.DictReader(open(os.path.join(d, "images.csv"), newline=""))
        if r["has_1024"] == "1" and os.path.exists(os.path.join(d, "series1024", r["Image Index"]))]
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["patient_id", "path", "visit", "view_position", "age_years", "sex",
                "pixel_spacing_mm", "orig_width", "orig_height", "orig_spacing_x_mm", "orig_spacing_y_mm"])
    for r in rows:
        m = meta[r["Image Index"]]
        ow, oh, sx, sy = int(m[7]), int(m[8]), float(m[9]), float(m[10])
        w.writerow([r["Patient ID"], os.path.abspath(os.path.join(d, "series1024", r["Image Index"])),
                    r["Follow-up #"], r["View Position"], r["Patient Age"], r["Patient Gender"],
                    "%.6g" % (sx * ow / 1024), ow, oh, sx, sy])
PYEOF
s=$(date +%s.%N)
$PY tools/make_test_dicoms.py sample "$T/manifest.csv" "$T/pacs" > /dev/null
n=$(ls "$T"/pacs/*/*.dcm | wc -l)
echo "written as DICOM: $n films of $(ls "$T/pacs" | wc -l) patients in $(secs $s) s"

orthanc_start "$T"
URL=$ORTHANC_URL
orthanc_upload $(find "$T/pacs" -type f | sort)

s=$(date +%s.%N)
$X ingest --db "$T/w.sqlite" --dicomweb "$URL" > "$T/pull"
echo "pull: $(secs $s) s; $(grep -h 'dicomweb:' "$T/pull" | sed 's/^ *//'); $(grep -h ' ok ' "$T/pull" | sed 's/^ *//')"
echo "  films stored once: $(q "SELECT count(*) || ' scans, ' || count(DISTINCT image_index) || ' distinct SOP Instance UIDs' FROM scans") (of $n in the PACS)"
s=$(date +%s.%N)
$X ingest --db "$T/w.sqlite" --dicomweb "$URL" > "$T/pull2"
echo "second pull: $(secs $s) s; $(grep -h 'dicomweb:' "$T/pull2" | sed 's/^ *//')"
s=$(date +%s.%N)
$X analyze --db "$T/w.sqlite" > "$T/analyze" 2>&1
echo "analyze: $(secs $s) s; $(grep -h 'registrations' "$T/analyze" | sed 's/^ *//')"
np=$(q "SELECT count(*) FROM registrations WHERE kind = 'previous'")
nm=$(q "SELECT count(*) FROM pair_changes WHERE kind = 'previous' AND map_path IS NOT NULL")
s=$(date +%s.%N)
$X push --db "$T/w.sqlite" --dicomweb "$URL" --all > "$T/push" || true
echo "push: $(secs $s) s; $(head -1 "$T/push") [expected: $np comparisons, $((np + 2 * nm)) objects: an SR each, an overlay and a strip per map]"
grep -c "no change overlay sent" "$T/push" | xargs printf '  comparisons without an overlay (no map): %s\n'
s=$(date +%s.%N)
$X push --db "$T/w.sqlite" --dicomweb "$URL" --all > "$T/push2" || true
echo "second push: $(secs $s) s; $(head -1 "$T/push2")"
# every SR through dsrdump
$PY - "$ORTHANC" "$T" << 'PYEOF'
import json, subprocess, sys, urllib.request
root, tmp = sys.argv[1], sys.argv[2]
q = json.dumps({"Level": "Instance", "Query": {"Modality": "SR"}}).encode()
ids = json.loads(urllib.request.urlopen(urllib.request.Request(root + "/tools/find", data=q)).read())
ok = 0
for i in ids:
    open(f"{tmp}/sr.dcm", "wb").write(urllib.request.urlopen(f"{root}/instances/{i}/file").read())
    r = subprocess.run(["dsrdump", f"{tmp}/sr.dcm"], capture_output=True, text=True)
    ok += r.returncode == 0 and "E:" not in r.stderr and "W:" not in r.stderr
q = json.dumps({"Level": "Instance", "Query": {"Modality": "OT"}}).encode()
sc = json.loads(urllib.request.urlopen(urllib.request.Request(root + "/tools/find", data=q)).read())
print(f"in the PACS: {len(ids)} SRs ({ok} read by dsrdump without an error or warning), {len(sc)} secondary captures")
PYEOF
