#!/bin/sh
# SPDX-License-Identifier: MIT
# The main job on sample/: set up, build, ingest the sample series into
# out/sample.sqlite and show what was stored.
set -eu
cd "$(dirname "$0")/.."
tools/setup.sh
mkdir -p out
DB=out/sample.sqlite
./build/src/cxrtrack ingest --db "$DB" --manifest sample/manifest.csv
./build/src/cxrtrack sql --db "$DB" \
  "SELECT p.patient_id, p.sex, p.n_scans, p.n_frontal,
          group_concat(s.view_position || ':' || coalesce(s.finding_labels, ''), '  ') AS visits
     FROM patients p JOIN (SELECT * FROM scans ORDER BY visit) s USING (patient_id)
    GROUP BY p.patient_id ORDER BY p.patient_id"
echo "store: $DB (query it with: ./build/src/cxrtrack sql --db $DB 'SELECT ...')"
