#!/bin/sh
# SPDX-License-Identifier: MIT
# Ingest speed.
#  1. metadata-only ingest of the full NIH file (112,120 rows); target < 5 s
#  2. image ingest (read + SHA-256 + full libpng decode + insert) of the
#     196 full-resolution films in series1024, on 1 and 2 decoder threads;
#     target >= 80 images/s per thread. In the same run, the loop a user
#     would otherwise write in Python (cv2.imread + hashlib + sqlite3).
# Usage: bench/ingest.sh [build dir]   (needs ../shared/data)
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
X=$B/src/cxrtrack
D=../shared/data/nih
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
sh bench/machine.sh
best() { sort -n | head -1; }

for i in 1 2 3; do
  rm -f "$T"/m.sqlite*
  s=$(date +%s.%N); $X ingest --db "$T/m.sqlite" --nih $D/Data_Entry_2017_v2020.csv.gz >/dev/null; e=$(date +%s.%N)
  echo "$e - $s" | bc
done | best | awk '{printf "metadata-only ingest, 112,120 rows: %.2f s (best of 3; target < 5 s)\n", $1}'

n=$(ls $D/series1024/*.png | wc -l)
for j in 1 2; do
  for i in 1 2 3; do
    rm -f "$T"/i.sqlite*
    s=$(date +%s.%N); $X ingest --db "$T/i.sqlite" --nih $D/images.csv --images $D/series1024 --jobs $j >/dev/null; e=$(date +%s.%N)
    echo "$e - $s" | bc
  done | best | awk -v n=$n -v j=$j '{printf "image ingest, %d films 1024x1024, %d thread(s): %.2f s = %.0f images/s (%.0f per thread)\n", n, j, $1, n/$1, n/$1/j}'
done
/usr/bin/python3 - "$D/series1024" "$T/py.sqlite" <<'PY'
import glob, hashlib, sqlite3, sys, time
import cv2
files = sorted(glob.glob(sys.argv[1] + "/*.png"))
best = 1e9
for _ in range(3):
    db = sqlite3.connect(sys.argv[2]); db.execute("DROP TABLE IF EXISTS s")
    db.execute("CREATE TABLE s (name TEXT UNIQUE, sha TEXT, w INT, h INT)")
    t = time.perf_counter()
    for f in files:
        data = open(f, "rb").read()
        sha = hashlib.sha256(data).hexdigest()
        im = cv2.imread(f, cv2.IMREAD_UNCHANGED)
        db.execute("INSERT INTO s VALUES (?,?,?,?)", (f, sha, im.shape[1], im.shape[0]))
    db.commit(); best = min(best, time.perf_counter() - t); db.close()
print("python cv2.imread + hashlib + sqlite3, 1 thread: %.2f s = %.0f images/s" % (best, len(files) / best))
PY
