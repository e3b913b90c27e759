#!/bin/sh
# SPDX-License-Identifier: MIT
# The CLI over the sample: exit codes, summaries, idempotent re-ingest,
# sql output formats and read-only protection.
set -eu
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_rc() { want=$1; shift; set +e; "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e
  [ "$rc" = "$want" ] || { cat "$T/out" "$T/err" >&2; fail "'$*' exited $rc, want $want"; }; }

expect_rc 2 "$CXRTRACK"
expect_rc 2 "$CXRTRACK" frobnicate
expect_rc 2 "$CXRTRACK" ingest --manifest x.csv
expect_rc 2 "$CXRTRACK" sql --db "$T/x.sqlite" --format xml 'SELECT 1'
expect_rc 1 "$CXRTRACK" sql --db "$T/absent.sqlite" 'SELECT 1'
[ ! -e "$T/absent.sqlite" ] || fail "a read-only query created a database"

# help: the general text, and each command's options with its examples
expect_rc 0 "$CXRTRACK" help
grep -q "cxrtrack help COMMAND" "$T/out" || fail "help does not say how to get a command's help"
for c in ingest analyze calibrate merge predict lungs severity register report sql; do
  expect_rc 0 "$CXRTRACK" help $c
  grep -q "^Examples:" "$T/out" && grep -q "^  cxrtrack $c " "$T/out" && grep -q -- "--help" "$T/out" \
    || { cat "$T/out"; fail "help $c"; }
done
expect_rc 0 "$CXRTRACK" help ingest
grep -q -- "--manifest" "$T/out" || fail "help ingest is not ingest's"
expect_rc 2 "$CXRTRACK" help frobnicate
grep -q "no command 'frobnicate'" "$T/err" || fail "help of an unknown command"
# the man page is made from the same text (src/meson.build)
MAN=$(dirname "$CXRTRACK")/cxrtrack.1
[ -f "$MAN" ] || fail "no man page beside the binary"
for c in ingest analyze severity report sql; do
  grep -q "^\.SS $c\$" "$MAN" || fail "man page has no section for $c"
done
grep -q "cxrtrack severity film.png --format json" "$MAN" || fail "man page lacks the examples"

# a DICOM folder without a DICOM film says so, and how PNG films are read
mkdir "$T/empty" "$T/pngs"
cp "$CXR_SOURCE_ROOT/sample/images/00000001_000.png" "$T/pngs/"
expect_rc 0 "$CXRTRACK" ingest --db "$T/e.sqlite" --dicom "$T/empty"
grep -q "no DICOM film in .*empty: it holds no file; PNG or JPEG films are ingested with --folder DIR or --manifest" "$T/err" \
  || fail "empty DICOM folder: $(cat "$T/err")"
expect_rc 0 "$CXRTRACK" ingest --db "$T/e.sqlite" --dicom "$T/pngs"
grep -q "no DICOM film in .*pngs (its files are listed above)" "$T/err" || fail "PNG folder as DICOM: $(cat "$T/err")"
grep -q "00000001_000.png: not a DICOM file" "$T/out" || fail "PNG folder as DICOM: the file not listed"
# a fatal error is not followed by a summary of nothing
expect_rc 1 "$CXRTRACK" ingest --db "$T/no/such/dir/x.sqlite" --manifest "$CXR_SOURCE_ROOT/sample/manifest.csv"
[ ! -s "$T/out" ] || fail "a summary after a fatal error: $(cat "$T/out")"

DB="$T/s.sqlite"
expect_rc 0 "$CXRTRACK" ingest --db "$DB" --manifest "$CXR_SOURCE_ROOT/sample/manifest.csv"
grep -q "ok 20, missing 0, invalid 0, unchanged 0" "$T/out" || fail "first ingest: $(cat "$T/out")"
grep -q "4 patients (4 with 2+ scans), 20 scans (20 ok)" "$T/out" || fail "store line"
expect_rc 0 "$CXRTRACK" ingest --db "$DB" --manifest "$CXR_SOURCE_ROOT/sample/manifest.csv"
grep -q "ok 0, missing 0, invalid 0, unchanged 20" "$T/out" || fail "re-ingest added rows"

expect_rc 0 "$CXRTRACK" sql --db "$DB" --format csv \
  "SELECT patient_id, group_concat(follow_up, ' ') AS f FROM (SELECT * FROM scans ORDER BY visit) GROUP BY patient_id ORDER BY patient_id"
printf 'patient_id,f\r\n1,0 1 2\r\n10384,32 34 35 36\r\n1543,0 1 2 3 4 5 6 7\r\n2633,0 6 11 17 25\r\n' > "$T/want"
cmp -s "$T/out" "$T/want" || { cat "$T/out"; fail "visit order"; }

expect_rc 0 "$CXRTRACK" sql --db "$DB" --format json "SELECT image_index, width, pixel_spacing_mm FROM scans WHERE patient_id = '1' ORDER BY visit"
/usr/bin/python3 - "$T/out" <<'PY' || fail "json output"
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["image_index"] for r in rows] == ["00000001_000.png", "00000001_001.png", "00000001_002.png"], rows
assert rows[0]["width"] == 1024 and abs(rows[0]["pixel_spacing_mm"] - 0.3745) < 1e-9, rows
PY

# numbers as short as they read back
expect_rc 0 "$CXRTRACK" sql --db "$DB" --format json "SELECT 0.5772 AS g, 1.0 / 3 AS t, 2.5e-7 AS s, 7 AS i"
/usr/bin/python3 - "$T/out" <<'PY' || fail "json numbers: $(cat "$T/out")"
import json, re, sys
text = open(sys.argv[1]).read()
assert '"g": 0.5772' in text and '"s": 2.5e-07' in text and '"i": 7' in text, text
assert json.load(open(sys.argv[1]))[0]["t"] == 1.0 / 3, text
PY

expect_rc 1 "$CXRTRACK" sql --db "$DB" "DELETE FROM scan_findings"
grep -q "read-only" "$T/err" || fail "read-only message: $(cat "$T/err")"
expect_rc 0 "$CXRTRACK" sql --db "$DB" --format csv "SELECT count(*) FROM scan_findings"
[ "$(tr -d '\r' < "$T/out" | tail -1)" -gt 20 ] || fail "findings deleted by a read-only query"

# The NIH format over the same films: the other rows of these patients
# have no file and are stored as missing.
expect_rc 0 "$CXRTRACK" ingest --db "$T/n.sqlite" --nih "$CXR_SOURCE_ROOT/sample/Data_Entry_sample.csv" \
  --images "$CXR_SOURCE_ROOT/sample" --jobs 2
grep -q "ok 20, missing 64, invalid 0" "$T/out" || fail "nih ingest: $(cat "$T/out")"
expect_rc 0 "$CXRTRACK" sql --db "$T/n.sqlite" --format csv \
  "SELECT round(pixel_spacing_mm, 4) FROM scans WHERE image_index = '00000001_000.png'"
[ "$(tr -d '\r' < "$T/out" | tail -1)" = "0.3745" ] || fail "spacing: $(cat "$T/out")"
echo "cli: ok"
