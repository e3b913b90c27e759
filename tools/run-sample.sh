#!/bin/sh
# SPDX-License-Identifier: MIT
# The main job on sample/: set up, build, ingest the sample series into
# out/sample.sqlite, register every pair of frontal films, and show the results.
set -eu
cd "$(dirname "$0")/.."
tools/setup.sh
mkdir -p out
DB=out/sample.sqlite
./build/src/cxrtrack ingest --db "$DB" --manifest sample/manifest.csv
./build/src/cxrtrack analyze --db "$DB"
./build/src/cxrtrack sql --db "$DB" \
  "SELECT p.patient_id, p.sex, p.n_scans, p.n_frontal,
          group_concat(s.view_position || ':' || coalesce(s.finding_labels, ''), '  ') AS visits
     FROM patients p JOIN (SELECT * FROM scans ORDER BY visit) s USING (patient_id)
    GROUP BY p.patient_id ORDER BY p.patient_id"
./build/src/cxrtrack sql --db "$DB" \
  "SELECT m.patient_id, r.kind, f.visit || '->' || m.visit AS visits, round(r.dx_px, 1) AS dx_px,
          round(r.dy_px, 1) AS dy_px, round(r.angle_deg, 2) AS angle_deg, round(r.scale, 3) AS scale,
          round(r.confidence, 2) AS confidence, r.status, r.cross_view
     FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id
     JOIN scans m ON m.scan_id = r.moving_scan_id ORDER BY m.patient_id, m.visit, r.kind DESC"
echo "store: $DB (query it with: ./build/src/cxrtrack sql --db $DB 'SELECT ...')"
