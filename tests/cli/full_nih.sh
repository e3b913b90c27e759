#!/bin/sh
# SPDX-License-Identifier: MIT
# Metadata-only ingest of the full NIH file (112,120 rows).
set -eu
: "${CXRTRACK:?}" "${CXR_SHARED_DATA:?}"
F="$CXR_SHARED_DATA/nih/Data_Entry_2017_v2020.csv.gz"
[ -f "$F" ] || { echo "skip: $F not present"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
DB="$T/nih.sqlite"
q() { "$CXRTRACK" sql --db "$DB" --format csv "$1" | tr -d '\r' | tail -1; }
"$CXRTRACK" ingest --db "$DB" --nih "$F" > "$T/out" || { cat "$T/out"; fail "ingest"; }
cat "$T/out"
[ "$(q "SELECT count(*) FROM scans")" = 112120 ] || fail "rows"
[ "$(q "SELECT count(*) FROM patients")" = 30805 ] || fail "patients"
[ "$(q "SELECT count(*) FROM patients WHERE n_scans >= 2")" = 13302 ] || fail "patients with 2+"
[ "$(q "SELECT max(n_scans) FROM patients")" = 184 ] || fail "longest series"
[ "$(q "SELECT count(*) FROM scans WHERE visit <> follow_up")" = 0 ] || fail "visit vs Follow-up #"
# The suffix disagrees with Follow-up # in 24,106 rows; visit follows Follow-up #.
[ "$(q "SELECT count(*) FROM scans WHERE CAST(substr(image_index, 10, 3) AS INTEGER) <> visit")" = 24106 ] || fail "suffix check"
echo "full_nih: ok"
