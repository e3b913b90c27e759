#!/bin/sh
# SPDX-License-Identifier: MIT
# A real dated archive through the generic manifest with a column mapping:
# the COVID-19 image data collection series in ../shared/data.
set -eu
: "${CXRTRACK:?}" "${CXR_SHARED_DATA:?}"
C="$CXR_SHARED_DATA/covid-series"
[ -f "$C/metadata.csv" ] || { echo "skip: $C/metadata.csv not present"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
DB="$T/c.sqlite"
q() { "$CXRTRACK" sql --db "$DB" --format csv "$1" | tr -d '\r' | tail -1; }
"$CXRTRACK" ingest --db "$DB" --manifest "$C/metadata.csv" --images "$C/images" \
  --patient-prefix covid- \
  --map patient_id=patientid,day_offset=offset,path=filename,view_position=view,age_years=age,finding_labels=finding \
  > "$T/out" || { cat "$T/out"; fail "ingest"; }
cat "$T/out"
rows=$(($(wc -l < "$C/metadata.csv") - 1))
[ "$(q "SELECT count(*) FROM scans")" = "$rows" ] || fail "not every row stored"
[ "$(q "SELECT count(*) FROM scans WHERE status = 'ok'")" = "$rows" ] || fail "files not found or invalid"
[ "$(q "SELECT count(DISTINCT patient_id) FROM scans")" = 53 ] || fail "patients"
[ "$(q "SELECT count(*) FROM scans WHERE view_kind = 'lateral'")" -gt 0 ] || fail "no lateral films"
# Patient 10's films are at days 17, 19 and 27.
[ "$(q "SELECT group_concat(CAST(day_offset AS INTEGER), ' ') FROM (SELECT * FROM scans WHERE patient_id = 'covid-10' ORDER BY visit)")" = "17 19 27" ] || fail "day order"
# Within a patient, visit order never goes back in time where offsets are known.
[ "$(q "SELECT count(*) FROM scans a JOIN scans b ON a.patient_id = b.patient_id AND b.visit = a.visit + 1 WHERE a.day_offset > b.day_offset AND b.day_offset IS NOT NULL")" = 0 ] || fail "order vs offsets"
echo "covid_manifest: ok"
