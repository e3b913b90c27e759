#!/bin/sh
# SPDX-License-Identifier: MIT
# Limits that know their sample: a store with fewer films than the
# reference's min_films (the 4-patient sample) flags against cxrtrack's
# reference limits (models/reference-limits.csv) and says so in every
# flag; one with enough films, or a reference of another classifier,
# derives its own (and reference limits give way once it has enough);
# a broken reference file is refused with its file and line; calibrate
# --samples writes every film/copy difference.
set -eu
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
X=$CXRTRACK
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export CXR_NO_PROGRESS=1
fail() { echo "FAIL: $*" >&2; exit 1; }
q() { "$X" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -1; }
REF=$CXR_SOURCE_ROOT/models/reference-limits.csv
M=$CXR_SOURCE_ROOT/sample/manifest.csv
min=$(sed -n 's/^# min_films: *//p' "$REF")
[ "$min" -gt 4 ] || fail "the reference's min_films ($min) does not exceed the sample's 4 films"

# the sample: too few films, the reference's limits, said in every flag
"$X" ingest --db "$T/a.sqlite" --manifest "$M" > /dev/null
CXRTRACK_REFERENCE_LIMITS=$REF "$X" analyze --db "$T/a.sqlite" > "$T/log" 2>&1 || { cat "$T/log"; fail analyze; }
[ "$(q "$T/a.sqlite" "SELECT count(*) FROM retest_limits WHERE method NOT LIKE 'reference: %, fewer than $min'")" = 0 ] \
  || fail "limits not from the reference: $(q "$T/a.sqlite" "SELECT group_concat(method) FROM retest_limits")"
[ "$(q "$T/a.sqlite" "SELECT count(*) FROM retest_limits r WHERE abs(limit_value - 0) < 0")" = 0 ]
# the values are the file's
while IFS=, read -r sig lim rest; do
  case "$sig" in '#'* | signal) continue ;; esac
  got=$(q "$T/a.sqlite" "SELECT printf('%.6g', limit_value) FROM retest_limits WHERE signal = '$sig'")
  [ "$got" = "$(printf '%.6g' "$lim")" ] || fail "$sig: stored $got, the reference says $lim"
done < "$REF"
# every flag row (stable ones too: they say what they were judged against)
n=$(q "$T/a.sqlite" "SELECT count(*) FROM progression_flags WHERE kind <> 'insufficient_visits'")
[ "$n" -gt 20 ] || fail "only $n flag rows to check"
[ "$(q "$T/a.sqlite" "SELECT count(*) FROM progression_flags WHERE kind <> 'insufficient_visits'
       AND (limit_source NOT IN ('reference', 'reference_visits') OR evidence NOT LIKE '%cxrtrack''s reference%')")" = 0 ] \
  || fail "a flag does not name the reference limits it used: $(q "$T/a.sqlite" "SELECT evidence FROM progression_flags
       WHERE kind <> 'insufficient_visits' AND evidence NOT LIKE '%cxrtrack''s reference%' LIMIT 1")"

# the store's own limits: without a reference, or with one of another
# classifier (copies of the analysed sample, the limits derived again: the
# same choice analyze makes, without analysing the films twice more)
cp "$T/a.sqlite" "$T/b.sqlite"
CXRTRACK_REFERENCE_LIMITS= "$X" calibrate --db "$T/b.sqlite" --force > /dev/null 2>&1 || fail "calibrate without reference"
[ "$(q "$T/b.sqlite" "SELECT count(*) FROM retest_limits WHERE method LIKE 'reference%'")" = 0 ] || fail "reference used"
sed 's/^# classifier_sha256: .*/# classifier_sha256: 0000000000000000000000000000000000000000000000000000000000000000/' \
  "$REF" > "$T/other.csv"
cp "$T/a.sqlite" "$T/c.sqlite"
CXRTRACK_REFERENCE_LIMITS=$T/other.csv "$X" calibrate --db "$T/c.sqlite" --force > /dev/null 2>&1 || fail "calibrate, other reference"
[ "$(q "$T/c.sqlite" "SELECT count(*) FROM retest_limits WHERE method LIKE 'reference%'")" = 0 ] \
  || fail "another classifier's reference used"

# enough films (a reference asking for 2): reference limits give way to the store's own
sed 's/^# min_films: .*/# min_films: 2/' "$REF" > "$T/two.csv"
CXRTRACK_REFERENCE_LIMITS=$T/two.csv "$X" calibrate --db "$T/a.sqlite" > "$T/log" 2>&1 || { cat "$T/log"; fail calibrate; }
[ "$(q "$T/a.sqlite" "SELECT count(*) FROM retest_limits WHERE method LIKE 'reference%'")" = 0 ] \
  || fail "reference limits kept in a store with enough films"
[ "$(q "$T/a.sqlite" "SELECT count(*) FROM retest_limits")" -gt 20 ] || fail "own limits not derived"

# enough films is counted over the store, not over the calib_films it
# measures: 4 films against a minimum of 3, measured on 2 of them
sed 's/^# min_films: .*/# min_films: 3/' "$REF" > "$T/three.csv"
printf '[progression]\ncalib_films=2\n' > "$T/two.ini"
"$X" ingest --db "$T/e.sqlite" --manifest "$M" > /dev/null
CXRTRACK_REFERENCE_LIMITS=$T/three.csv "$X" analyze --db "$T/e.sqlite" --no-diff --config "$T/two.ini" \
  > "$T/log" 2>&1 || { cat "$T/log"; fail "analyze, 4 films against 3"; }
[ "$(q "$T/e.sqlite" "SELECT count(*) FROM retest_limits WHERE method LIKE 'reference%'")" = 0 ] \
  || fail "4 films counted as fewer than 3"
[ "$(q "$T/e.sqlite" "SELECT max(n_copies) FROM retest_limits")" = 4 ] || fail "not measured on 2 films x 2 copies"

# a broken reference: refused, the file and line named
sed 's/^probability:Edema,[^,]*,/probability:Edema,-1,/' "$REF" > "$T/bad.csv"
"$X" ingest --db "$T/d.sqlite" --manifest "$M" > /dev/null
if CXRTRACK_REFERENCE_LIMITS=$T/bad.csv "$X" analyze --db "$T/d.sqlite" > "$T/out" 2> "$T/err"; then
  fail "a broken reference was read"
fi
line=$(grep -n '^probability:Edema,' "$T/bad.csv" | cut -d: -f1)
grep -q "bad.csv:$line: " "$T/err" || fail "broken reference: $(cat "$T/err")"

# calibrate --samples: every film/copy difference
CXRTRACK_REFERENCE_LIMITS= "$X" calibrate --db "$T/b.sqlite" --force --samples "$T/s.csv" > /dev/null \
  || fail "calibrate --samples"
[ "$(head -1 "$T/s.csv")" = "film_sha256,signal,value" ] || fail "samples header"
[ "$(grep -c ',severity:global,' "$T/s.csv")" = 8 ] || fail "samples: $(grep -c ',severity:global,' "$T/s.csv") severity rows, not 4 films x 2 copies"
echo "limits: ok"
