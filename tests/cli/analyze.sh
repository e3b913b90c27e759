#!/bin/sh
# SPDX-License-Identifier: MIT
# analyze over the sample: one registration per (frontal film, previous)
# and (frontal film, baseline), cross-view pairs marked, nothing redone on
# a rerun, and a SIGKILL part-way resumed without duplicates. Also the
# register command's JSON.
set -eu
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
S="$CXR_SOURCE_ROOT/sample"
DB="$T/a.sqlite"
q() { "$CXRTRACK" sql --db "$DB" --format csv "$1" | tr -d '\r' | tail -1; }

"$CXRTRACK" register "$S/images/00000001_000.png" "$S/images/00000001_001.png" --format json > "$T/j" || true
/usr/bin/python3 - "$T/j" <<'PY' || fail "register json"
import json, sys
d = json.load(open(sys.argv[1]))
keys = ["dx_px", "dy_px", "angle_deg", "scale", "confidence", "status", "reason", "ncc_before",
        "ncc_global", "ncc_after", "ncc_region", "lung_dice_before", "lung_dice_after", "deformable",
        "rms_displacement_px", "max_displacement_px", "jacobian_min", "jacobian_max", "folds",
        "global_confidence", "elapsed_ms"]
assert sorted(d) == sorted(keys), d
assert d["status"] in ("ok", "low_confidence", "failed") and 0 <= d["confidence"] <= 1, d
assert 0.8 <= d["scale"] <= 1.25 and abs(d["angle_deg"]) <= 15, d
# the lung fields were found, the field is kept only when it helps, and ok
# means the lungs line up
assert d["ncc_region"] == "lungs" and isinstance(d["deformable"], bool), d
# kept when it raises the lungs' NCC, or their overlap at almost the same NCC
assert (d["ncc_after"] == d["ncc_global"]) != d["deformable"], d
assert not d["deformable"] or d["ncc_after"] > d["ncc_global"] or (
    d["lung_dice_after"] > 0.01 and d["ncc_after"] > d["ncc_global"] - 0.01), d
assert d["deformable"] == (d["rms_displacement_px"] > 0) and d["folds"] == 0, d
assert d["status"] != "ok" or (d["lung_dice_after"] >= 0.9 and d["ncc_after"] > d["ncc_before"]), d
# one rule: the confidence is the calibrated chance of alignment from the
# lungs' NCC after registration (src/register/register.c), and ok needs it >= 0.5
import math
assert abs(d["confidence"] - 1 / (1 + math.exp(3.5265 - 5.2191 * d["ncc_after"]))) < 6e-4, d
assert d["status"] != "ok" or d["confidence"] >= 0.5, d
assert not d["deformable"] or 0 < d["jacobian_min"] <= 1 <= d["jacobian_max"], d
assert d["deformable"] or d["jacobian_min"] == d["jacobian_max"] == 1, d
assert (d["reason"] is None) == (d["status"] == "ok"), d
PY
# --refine: the intensities' pull after the blocks lines the lungs up better
"$CXRTRACK" register "$S/images/00001543_001.png" "$S/images/00001543_002.png" --format json > "$T/p" || true
"$CXRTRACK" register --refine "$S/images/00001543_001.png" "$S/images/00001543_002.png" --format json > "$T/r" || true
/usr/bin/python3 - "$T/p" "$T/r" <<'PY' || fail "register --refine json"
import json, sys
p, r = (json.load(open(f)) for f in sys.argv[1:])
assert r["deformable"] and r["folds"] == 0, r
assert r["ncc_after"] > p["ncc_after"] + 0.005, (p["ncc_after"], r["ncc_after"])
# the outlines held where the blocks put them (0.025 lower without the pins)
assert r["lung_dice_after"] > p["lung_dice_after"] - 0.015, (p["lung_dice_after"], r["lung_dice_after"])
PY
"$CXRTRACK" register --no-lungs "$S/images/00000001_000.png" "$S/images/00000001_001.png" --format json > "$T/j" || true
/usr/bin/python3 - "$T/j" <<'PY' || fail "register --no-lungs json"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ncc_region"] == "thorax" and d["lung_dice_after"] is None, d
PY

"$CXRTRACK" ingest --db "$DB" --manifest "$S/manifest.csv" > /dev/null
# register --db: files and pixel aspects from the store, as analyze uses them
A1=$(q "SELECT pixel_aspect FROM scan_pixel_aspect JOIN scans USING (scan_id) WHERE image_index = '00001543_003.png'")
A2=$(q "SELECT pixel_aspect FROM scan_pixel_aspect JOIN scans USING (scan_id) WHERE image_index = '00001543_004.png'")
"$CXRTRACK" register --db "$DB" 00001543_003.png 00001543_004.png > "$T/r1" || true
"$CXRTRACK" register --fixed-aspect "$A1" --moving-aspect "$A2" "$S/images/00001543_003.png" \
  "$S/images/00001543_004.png" > "$T/r2" || true
grep -v elapsed_ms "$T/r1" > "$T/r1b"; grep -v elapsed_ms "$T/r2" > "$T/r2b"
[ -s "$T/r1b" ] && diff "$T/r1b" "$T/r2b" || fail "register --db differs from the same aspects by hand"
"$CXRTRACK" register --db "$DB" 00001543_003.png nosuch.png 2> "$T/err" && fail "register --db: unknown film"
grep -q "no film 'nosuch.png'" "$T/err" || fail "register --db: $(cat "$T/err")"
# Expected rows: for each patient with n frontal films, n-1 previous and
# n-1 baseline registrations: (3-1 + 4-1 + 8-1 + 5-1) * 2 = 32.
"$CXRTRACK" analyze --db "$DB" --no-model --jobs 1 > "$T/out1" 2>&1 &
PID=$!
i=0
while [ "$(q "SELECT count(*) FROM registrations" 2>/dev/null || echo 0)" = 0 ]; do
  i=$((i + 1)); [ $i -lt 600 ] || fail "nothing stored in 60 s"
  sleep 0.1
done
kill -9 $PID 2>/dev/null || true
wait $PID 2>/dev/null || true
partial=$(q "SELECT count(*) FROM registrations")
# one patient at a time, all of its pairs or none
[ "$(q "SELECT count(*) FROM (SELECT m.patient_id, count(*) c, max(p.n_frontal) n FROM registrations r JOIN scans m ON m.scan_id = r.moving_scan_id JOIN patients p USING (patient_id) GROUP BY 1 HAVING c <> 2 * (n - 1))")" = 0 ] || fail "partial patient after kill"
"$CXRTRACK" analyze --db "$DB" --no-model > "$T/out2" || { cat "$T/out2"; fail "analyze"; }
cat "$T/out2"
[ "$(q "SELECT count(*) FROM registrations")" = 32 ] || fail "registration count"
[ "$(q "SELECT count(*) FROM registrations WHERE kind = 'previous'")" = 16 ] || fail "previous count"
[ "$(q "SELECT count(*) FROM pending_registrations")" = 0 ] || fail "pending left"
# Patient 2633 alternates PA and AP: its cross-view pairs are marked.
[ "$(q "SELECT count(*) FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id JOIN scans m ON m.scan_id = r.moving_scan_id WHERE (f.view_kind <> m.view_kind) <> r.cross_view")" = 0 ] || fail "cross_view flag"
[ "$(q "SELECT count(*) FROM registrations WHERE cross_view")" = 6 ] || fail "cross-view count"
# The film's previous and baseline rows for visit 1 are the same pair.
[ "$(q "SELECT count(*) FROM registrations a JOIN registrations b USING (fixed_scan_id, moving_scan_id) WHERE a.kind = 'previous' AND b.kind = 'baseline' AND a.dx_px <> b.dx_px")" = 0 ] || fail "visit-1 pair differs"
# Pixel aspects from the manifest's original sizes (NIH films are all stored
# at 1024 x 1024): 00000001_002 came from a 2500 x 2048 original, and its
# registrations were made in the patient's frame.
[ "$(q "SELECT round(a.pixel_aspect, 4) FROM scan_pixel_aspect a JOIN scans USING (scan_id) WHERE image_index = '00000001_002.png'")" = 0.8192 ] || fail "pixel aspect"
[ "$(q "SELECT count(*) FROM registrations r JOIN scans m ON m.scan_id = r.moving_scan_id WHERE m.image_index = '00000001_002.png' AND round(r.moving_aspect, 4) = 0.8192")" = 2 ] || fail "registration aspects"
# Every stored result carries its evidence.
[ "$(q "SELECT count(*) FROM registrations WHERE status <> 'ok' AND reason IS NULL")" = 0 ] || fail "status without reason"
[ "$(q "SELECT count(*) FROM registrations WHERE confidence < 0 OR confidence > 1 OR method IS NULL")" = 0 ] || fail "confidence range"
# the deformable stage: a field on some rows, each stored whole (2 x nx x
# ny float32) with its summary (kept when the NCC rises, or the lungs'
# overlap at almost the same NCC, or, chosen by NCC + Dice where the lungs
# overlapped too little, at most 0.05 under the global stage's NCC); ok
# means the lungs line up; a row without a field has no field columns
[ "$(q "SELECT count(*) FROM registrations WHERE deformable")" -gt 4 ] || fail "no deformable rows"
[ "$(q "SELECT count(*) FROM registrations WHERE deformable AND NOT (length(deform_field) = 8 * deform_nx * deform_ny AND rms_displacement_px > 0 AND folds = 0 AND (ncc_after > ncc_global - 0.01 OR (lung_dice_after IS NOT NULL AND ncc_after >= ncc_global - 0.05)))")" = 0 ] || fail "stored fields"
[ "$(q "SELECT count(*) FROM registrations WHERE NOT deformable AND deform_field IS NOT NULL")" = 0 ] || fail "field without deformable"
[ "$(q "SELECT count(*) FROM registrations WHERE status = 'ok' AND NOT (ncc_region = 'lungs' AND lung_dice_after >= 0.9 AND ncc_after > ncc_before)")" = 0 ] || fail "ok rows whose lungs do not line up"
# one status rule: ok rows are more likely aligned than not, and every row
# holds the global stage's own number apart
[ "$(q "SELECT count(*) FROM registrations WHERE status = 'ok' AND confidence < 0.5")" = 0 ] || fail "ok below confidence 0.5"
[ "$(q "SELECT count(*) FROM registrations WHERE status <> 'failed' AND (global_confidence IS NULL OR abs(confidence - 1 / (1 + exp(3.5265 - 5.2191 * ncc_after))) > 1e-9)")" = 0 ] || fail "confidence not the calibrated one"
[ "$(q "SELECT count(*) FROM registrations WHERE deformable AND NOT (jacobian_min > 0 AND jacobian_min <= 1 AND jacobian_max >= 1)")" = 0 ] || fail "jacobian range"
# a store made before schema 0022: its confidence (then the global
# stage's) moves to global_confidence, the calibrated one is computed, and
# an ok row below 0.5 becomes low_confidence with the reason
O="$T/old.sqlite"
for f in "$CXR_SOURCE_ROOT"/schema/00[01]*.sql "$CXR_SOURCE_ROOT"/schema/002[01]_*.sql; do cat "$f"; done \
  | sqlite3 "$O" || fail "schema 0001-0021"
sqlite3 "$O" "PRAGMA user_version = 21;
  INSERT INTO patients (patient_id) VALUES ('p');
  INSERT INTO scans (scan_id, image_index, patient_id, view_kind, status) VALUES (1, 'a', 'p', 'PA', 'missing'), (2, 'b', 'p', 'PA', 'missing');
  INSERT INTO registrations (fixed_scan_id, moving_scan_id, kind, confidence, status, cross_view, method, ncc_before, ncc_after)
    VALUES (1, 2, 'previous', 0.41, 'ok', 0, 'm', 0.2, 0.6), (1, 2, 'baseline', 0.33, 'ok', 0, 'm', 0.2, 0.9);" || fail "old rows"
"$CXRTRACK" sql --write --db "$O" "SELECT 1" > /dev/null || fail "migrating the old store"
[ "$("$CXRTRACK" sql --db "$O" --format csv "SELECT kind, global_confidence, round(confidence, 4), status, reason IS NOT NULL FROM registrations ORDER BY kind" | tr -d '\r' | tail -n +2)" = "baseline,0.33,0.7633,ok,0
previous,0.41,0.4025,low_confidence,1" ] || fail "schema 0022 on old rows"
"$CXRTRACK" analyze --db "$DB" --no-model > "$T/out3"
grep -q "registrations 0:" "$T/out3" || fail "rerun redid work: $(cat "$T/out3")"
# the whole lung (behind the heart, below the domes): every map of a pair
# whose films have lung fields says so, and covers more than the fields
W="$T/w.sqlite"
head -1 "$S/manifest.csv" > "$T/w.csv"
grep '^1543,' "$S/manifest.csv" | sed "s|images/|$S/images/|" >> "$T/w.csv"
"$CXRTRACK" ingest --db "$W" --manifest "$T/w.csv" > /dev/null
"$CXRTRACK" analyze --db "$W" --no-model > /dev/null || fail "analyze (the whole lung by default)"
"$CXRTRACK" ingest --db "$T/l.sqlite" --manifest "$T/w.csv" > /dev/null
"$CXRTRACK" analyze --db "$T/l.sqlite" --no-model --map-region lungs > /dev/null || fail "analyze --map-region lungs"
kinds=$("$CXRTRACK" sql --db "$W" --format csv "SELECT group_concat(DISTINCT mask_kind) FROM pair_changes" | tr -d '\r' | tail -1)
[ "$kinds" = whole_lung ] || fail "mask kinds by default: $kinds"
areas="SELECT f.image_index, m.image_index, c.kind, c.mask_area_px, c.mask_kind FROM pair_changes c
  JOIN scans f ON f.scan_id = c.fixed_scan_id JOIN scans m ON m.scan_id = c.moving_scan_id ORDER BY 1, 2, 3"
"$CXRTRACK" sql --db "$W" --format csv "$areas" | tr -d '\r' > "$T/w.areas"
"$CXRTRACK" sql --db "$T/l.sqlite" --format csv "$areas" | tr -d '\r' > "$T/l.areas"
/usr/bin/python3 - "$T/w.areas" "$T/l.areas" <<'PY' || fail "whole lung areas"
import csv, sys
w = {tuple(r[:3]): float(r[3]) for r in list(csv.reader(open(sys.argv[1])))[1:]}
l = {tuple(r[:3]): (float(r[3]), r[4]) for r in list(csv.reader(open(sys.argv[2])))[1:]}
assert w.keys() == l.keys() and len(w) >= 8, (len(w), len(l))
assert all(kind == "lungs" for _, kind in l.values()), l
ratio = sorted(w[k] / l[k][0] for k in w)
assert 1.1 < ratio[len(ratio) // 2] < 1.8, ratio
PY
"$CXRTRACK" analyze --db "$W" --map-region heart > "$T/bad" 2>&1 && fail "--map-region heart accepted"
grep -q "lungs or whole_lung" "$T/bad" || fail "--map-region heart: $(cat "$T/bad")"
echo "analyze: ok (killed after $partial rows, resumed to 32)"
