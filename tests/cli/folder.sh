#!/bin/sh
# SPDX-License-Identifier: MIT
# A folder of PNG/JPEG films, one folder per patient, ingested without a
# manifest (`ingest --folder`): the sample's films laid out as a user would
# lay out their own, dated 30 days per visit, the date in the file's name
# (ISO or YYYYMMDD) or in a folder above it. Visit order follows the dates,
# not the paths (one patient's names sort against its dates); the view is
# a word of the name; an undated film is stored invalid with the reason;
# a film outside any patient's folder, a text file and a DICOM file are not
# stored, each reported by path; a second run stores nothing twice; the
# store analyzes and reports with the dates.
set -eu
export CXRTRACK_REFERENCE_LIMITS=
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
S="$CXR_SOURCE_ROOT/sample"
q() { "$CXRTRACK" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -n +2; }
F="$T/films"
# patient_id,path,visit,view_position,... -> films/PATIENT/DATE_VIEW.png;
# patient 1543's dates in YYYYMMDD folders named so that their path order
# is the reverse of their dates'
tail -n +2 "$S/manifest.csv" | while IFS=, read -r pid path visit view rest; do
  d=$(date -u -d "2020-01-01 + $((30 * visit)) days" +%Y-%m-%d)
  if [ "$pid" = 1543 ]; then
    dir="$F/$pid/$((9 - visit))_study_$(echo "$d" | tr -d -)"
    mkdir -p "$dir"
    cp "$S/$path" "$dir/film.png"
  else
    mkdir -p "$F/$pid"
    cp "$S/$path" "$F/$pid/${d}_$view.png"
  fi
done
mkdir "$F/9999"
/usr/bin/python3 -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2], quality=90)' \
  "$S/images/00000001_000.png" "$F/9999/2022-05-01.jpg"
cp "$S/images/00000001_000.png" "$F/stray.png"
cp "$S/images/00000001_000.png" "$F/1/scan_without_date.png"
# not dates: an impossible day, and 8 digits inside a longer run
cp "$S/images/00000001_000.png" "$F/1/2020-02-30.png"
cp "$S/images/00000001_000.png" "$F/1/120200101.png"
printf 'notes\n' > "$F/1/README.txt"
cp "$CXR_SOURCE_ROOT/tests/data/dicom/lateral.dcm" "$F/1/2021-01-01.dcm"

"$CXRTRACK" ingest --db "$T/f.sqlite" --folder "$F" > "$T/out" 2> "$T/err" \
  || { cat "$T/out" "$T/err"; fail "ingest --folder"; }
grep -q "ok 21, missing 0, invalid 3, unchanged 0, rejected rows 3, conflicts 0" "$T/out" \
  || { cat "$T/out"; fail "ingest counts"; }
for why in "films/stray.png: not in a patient's folder" \
           "1/README.txt: not a PNG or JPEG film" \
           "1/2021-01-01.dcm: a DICOM file: ingest --dicom reads" \
           "1/scan_without_date.png: no date (YYYY-MM-DD or YYYYMMDD)" \
           "1/2020-02-30.png: no date" "1/120200101.png: no date"; do
  grep -qF "$why" "$T/out" || { cat "$T/out"; fail "not reported: $why"; }
done
# every film under its patient, in the order of its date, with its view
[ "$(q "$T/f.sqlite" "SELECT count(DISTINCT patient_id) FROM scans WHERE status = 'ok'")" = 5 ] \
  || fail "patients"
[ "$(q "$T/f.sqlite" "SELECT image_index || ' ' || visit || ' ' || study_date FROM scans
                       WHERE patient_id = '1543' ORDER BY visit LIMIT 2")" = \
  "1543/9_study_20200101/film.png 0 2020-01-01
1543/8_study_20200131/film.png 1 2020-01-31" ] || fail "visit order from the dates"
mf=$(q "$T/f.sqlite" "SELECT group_concat(view_kind, ' ') FROM
                        (SELECT view_kind FROM scans WHERE status = 'ok' AND patient_id NOT IN ('1543', '9999')
                          ORDER BY patient_id, visit)")
mm=$(tail -n +2 "$S/manifest.csv" | grep -v '^1543,' | sort -t, -k1,1 -k3,3n | cut -d, -f4 | tr '\n' ' ')
[ "$mf " = "$mm" ] || fail "views: '$mf' vs the manifest's '$mm'"
[ "$(q "$T/f.sqlite" "SELECT status FROM scans WHERE image_index = '1/scan_without_date.png'")" \
  = invalid ] || fail "an undated film is stored invalid"

# a second run stores nothing twice
"$CXRTRACK" ingest --db "$T/f.sqlite" --folder "$F" > "$T/out2" 2>&1 || fail "second ingest"
grep -q "ok 0, missing 0, invalid 0, unchanged 24, rejected rows 3" "$T/out2" \
  || { cat "$T/out2"; fail "second run"; }
[ "$(q "$T/f.sqlite" "SELECT count(*) FROM scans")" = 24 ] || fail "duplicates"

# a folder with no film in a patient's folder says so
mkdir "$T/empty"
"$CXRTRACK" ingest --db "$T/e.sqlite" --folder "$T/empty" > /dev/null 2> "$T/err" \
  || fail "an empty folder is no error"
grep -qF "no PNG or JPEG film in a patient's folder" "$T/err" || { cat "$T/err"; fail "no hint"; }
"$CXRTRACK" ingest --db "$T/e.sqlite" --folder "$F" --images "$S" > /dev/null 2> "$T/err" \
  && fail "--images with --folder accepted"
grep -qF -- "--images applies to --nih and --manifest" "$T/err" || fail "--images message"

# the store goes through analyze and the report, dates on the page
"$CXRTRACK" analyze --db "$T/f.sqlite" --no-model --no-severity > "$T/an" 2>&1 \
  || { cat "$T/an"; fail "analyze"; }
grep -q "^analyze: 5 patients" "$T/an" || { cat "$T/an"; fail "analyze patients"; }
"$CXRTRACK" report --db "$T/f.sqlite" --patient 1543 --out "$T/rep" > /dev/null 2>&1 \
  || fail "report"
grep -q "2020-01-31" "$T/rep/patient_1543.html" || fail "the report shows the dates"
echo "folder: ok"
