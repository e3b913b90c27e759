#!/bin/sh
# SPDX-License-Identifier: MIT
# How long a new film takes to come back from `cxrtrack watch` as its SR
# and change overlay (issue: within 10 s for a patient with 5 priors, on
# one core). A local Orthanc with its DICOMweb plugin holds sample/ as
# DICOM (tools/make_test_dicoms.py); one `watch --polls 1` pulls, analyzes
# and pushes it all; then, three times, a watcher pinned to one core
# (taskset -c 0, --jobs 1, --interval 1) runs while a new film of patient
# 2633 (5 films before it; tools/new_study_film.py: an earlier film's
# pixels in a new study dated after the last) is stored into Orthanc, and
# the time from the store to both of its objects answering a QIDO-RS
# search of its study is printed, with the median.
# Usage: bench/watch_latency.sh [build dir]   (needs orthanc orthanc-dicomweb)
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
X=$(realpath "$B/src/cxrtrack")
PY=/usr/bin/python3
. tools/orthanc.sh
T=$(mktemp -d)
ORTHANC_PID=""
WPID=""
trap '[ -n "$WPID" ] && kill $WPID 2>/dev/null; [ -n "$ORTHANC_PID" ] && kill $ORTHANC_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
sh bench/machine.sh
orthanc_start "$T"
URL=$ORTHANC_URL
$PY tools/make_test_dicoms.py sample sample/manifest.csv "$T/pacs" > /dev/null
orthanc_upload $(find "$T/pacs" -type f | sort)
echo "PACS: $(ls "$T"/pacs/*/*.dcm | wc -l) films of $(ls "$T/pacs" | wc -l) patients; patient 2633: $(ls "$T"/pacs/2633/*.dcm | wc -l) films"
s=$(date +%s.%N)
$X watch --db "$T/w.sqlite" --dicomweb "$URL" --polls 1 > "$T/first" 2>&1
echo "first poll (pull, analyze, push all): $(echo "$(date +%s.%N) - $s" | bc | xargs printf '%.1f') s"

for run in 1 2 3; do
  # the film before the last, then the one before that, ...: a new film each time
  $PY tools/new_study_film.py "$T/pacs/2633" "$T/new$run.dcm" $((run + 1)) $((30 * run)) > /dev/null
  study=$($PY -c 'import sys, pydicom; print(pydicom.dcmread(sys.argv[1]).StudyInstanceUID)' "$T/new$run.dcm")
  taskset -c 0 $X watch --db "$T/w.sqlite" --dicomweb "$URL" --interval 1 --jobs 1 > "$T/watch$run" 2>&1 &
  WPID=$!
  while ! grep -q "push:" "$T/watch$run"; do sleep 0.1; done
  $PY - "$ORTHANC" "$URL" "$T/new$run.dcm" "$study" << 'PYEOF'
import json, sys, time, urllib.request
root, url, path, study = sys.argv[1:]
t0 = time.monotonic()
urllib.request.urlopen(urllib.request.Request(root + "/instances", data=open(path, "rb").read())).read()
while time.monotonic() - t0 < 120:
    found = set()
    for m in ("SR", "OT"):
        r = urllib.request.urlopen(f"{url}/studies/{study}/instances?Modality={m}").read()
        if r.strip() and json.loads(r):
            found.add(m)
    if found == {"SR", "OT"}:
        print(f"{time.monotonic() - t0:.2f}")
        break
    time.sleep(0.05)
else:
    print("timeout")
PYEOF
  kill $WPID; wait $WPID 2>/dev/null || true; WPID=""
done > "$T/times"
i=1
while read -r t; do
  echo "new film $i of patient 2633 (5+ priors): SR and overlay in the PACS after $t s"
  i=$((i + 1))
done < "$T/times"
sort -n "$T/times" | sed -n 2p | awk '{printf "median: %.2f s from the film stored to its SR and overlay in the PACS (watch --interval 1, one core; target <= 10 s)\n", $1}'
grep -h "push:" "$T"/watch3 | tail -1 | sed 's/^ */last poll: /'
