#!/bin/sh
# SPDX-License-Identifier: MIT
# cxrtrack severity and the Brixia zone scores of analyze: the JSON keys
# the issue names (zones A..F within 0..3, global their sum, status,
# reason); the C head against the same head applied in numpy to the
# features cxrtrack prints (so training and scoring read one definition);
# a broken head file and a head on another classifier refused with the
# reason; analyze scores every frontal film once (a second run scores
# nothing), scores films analysed before severity existed, and merge keeps
# the scores (tests/cli/shards.sh compares every row). Also the heart's
# size, a signal read from the lung fields: stored per film as `lungs`
# prints it, a limit and flags like every signal, and measured on the
# next run for films segmented before it existed.
set -eu
: "${CXRTRACK:?}"
X=$CXRTRACK
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export CXR_NO_PROGRESS=1
fail() { echo "FAIL: $*" >&2; exit 1; }
q() { "$X" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -1; }
FILM=$SRC/sample/images/00000001_002.png
HEAD=$SRC/models/cxr-severity.safetensors

"$X" severity --format json "$FILM" > "$T/j" || fail "severity json"
"$X" severity --features "$FILM" > "$T/f" || fail "severity --features"
/usr/bin/python3 - "$T/j" "$T/f" "$HEAD" <<'PY' || fail "severity json or parity"
import json, struct, sys
import numpy as np
j = json.load(open(sys.argv[1]))
for k in ("zones", "global", "status", "reason"):
    assert k in j, k
assert sorted(j["zones"]) == list("ABCDEF"), j["zones"]
assert all(0 <= v <= 3 for v in j["zones"].values()), j["zones"]
assert abs(sum(j["zones"].values()) - j["global"]) < 0.01, j
assert j["status"] == "ok" and j["reason"] is None, j
# the head applied to the printed features in numpy
f = np.array(json.load(open(sys.argv[2]))["features"])
raw = open(sys.argv[3], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
def t(name):
    a, b = hdr[name]["data_offsets"]
    return np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").astype(np.float64)
z = (f - t("feature_mean")) / t("feature_scale")
mine = np.clip(z @ t("weight") + t("zone_bias"), 0, 3)
c = np.array([j["zones"][k] for k in "ABCDEF"])
assert np.abs(mine - c).max() < 2e-3, (mine, c)
# the grades: each zone's score to the nearest whole grade, halves up, and their sum
g = [j["grades"][k] for k in "ABCDEF"]
want = np.floor(mine + 0.5).astype(int)
near_half = np.abs(mine - np.floor(mine) - 0.5) < 2e-3
assert all(int(a) == b or h for a, b, h in zip(g, want, near_half)), (g, mine)
assert j["global_grade"] == sum(g), j
PY

# text output names the zones and the method
"$X" severity "$FILM" > "$T/t" || fail "severity text"
grep -q "A [0-9.]* B [0-9.]* C [0-9.]* D [0-9.]* E [0-9.]* F [0-9.]*  global [0-9.]*  ok (zones: thirds)" "$T/t" \
  || { cat "$T/t"; fail "text output"; }

# broken heads
head -c 200 "$HEAD" > "$T/short.safetensors"
if "$X" severity --severity-model "$T/short.safetensors" "$FILM" > /dev/null 2> "$T/e"; then
  fail "a truncated head was read"
fi
grep -q "short.safetensors" "$T/e" || { cat "$T/e"; fail "truncated head: file not named"; }
if "$X" severity --severity-model "$SRC/models/cxr-lungs.safetensors" "$FILM" > /dev/null 2> "$T/e"; then
  fail "the lung segmenter was read as a head"
fi
grep -q "not a zone-score head" "$T/e" || { cat "$T/e"; fail "wrong architecture not said"; }
# a missing film: its name in the error, the other films still scored
"$X" severity "$T/none.png" "$FILM" > "$T/o" 2> "$T/e" && fail "a missing film did not fail"
grep -q "none.png" "$T/e" || { cat "$T/e"; fail "missing film not named"; }
grep -q "00000001_002.png" "$T/o" || fail "the good film was not scored"

# analyze: every frontal film scored once
DB=$T/s.sqlite
"$X" ingest --db "$DB" --manifest "$SRC/sample/manifest.csv" > "$T/log" 2>&1 || { cat "$T/log"; fail ingest; }
"$X" analyze --db "$DB" --no-severity > "$T/log" 2>&1 || { cat "$T/log"; fail "analyze --no-severity"; }
[ "$(q "$DB" "SELECT count(*) FROM film_severity")" = 0 ] || fail "--no-severity scored"
"$X" analyze --db "$DB" > "$T/log" 2>&1 || { cat "$T/log"; fail analyze; }
n=$(q "$DB" "SELECT count(*) FROM frontal_scans")
[ "$(q "$DB" "SELECT count(*) FROM film_severity")" = "$n" ] \
  || fail "films analysed before severity were not scored: $(q "$DB" "SELECT count(*) FROM film_severity") of $n"
[ "$(q "$DB" "SELECT count(*) FROM zone_scores")" = $((6 * n)) ] || fail "zone rows"
[ "$(q "$DB" "SELECT count(*) FROM scan_severity WHERE abs(A + B + C + D + E + F - global) > 1e-6")" = 0 ] \
  || fail "global is not the sum of the zones"
# the store agrees with the command
want=$(/usr/bin/python3 -c "import json,sys; print('%.3f' % json.load(open(sys.argv[1]))['global'])" "$T/j")
got=$(q "$DB" "SELECT printf('%.3f', global) FROM scan_severity WHERE image_index = '00000001_002.png'")
[ "$want" = "$got" ] || fail "analyze scored $got, severity $want"
# the zones are series signals: limits from re-posed copies, a flag row
# (of any kind) per signal and series of 2+ films, evidence that names
# the zone
[ "$(q "$DB" "SELECT count(*) FROM retest_limits WHERE signal LIKE 'severity:%' AND n_copies > 0")" = 7 ] \
  || fail "severity limits: $(q "$DB" "SELECT group_concat(signal) FROM retest_limits WHERE signal LIKE 'severity:%'")"
[ "$(q "$DB" "SELECT count(DISTINCT signal) FROM progression_flags WHERE signal LIKE 'severity:%'")" = 7 ] \
  || fail "severity flags"
[ "$(q "$DB" "SELECT count(*) FROM progression_flags WHERE signal LIKE 'severity:_'
               AND evidence NOT LIKE 'Brixia zone ' || substr(signal, 10) || ' (%'")" = 0 ] \
  || fail "a zone flag's evidence does not name its zone"
# pair deltas: later minus earlier, with the flags' limit
[ "$(q "$DB" "SELECT count(*) FROM pair_severity_deltas d
               JOIN scan_severity a ON a.scan_id = d.fixed_scan_id
               JOIN scan_severity b ON b.scan_id = d.moving_scan_id
              WHERE d.zone = 'global' AND abs(d.delta - (b.global - a.global)) < 1e-9
                AND d.limit_value > 0 AND abs(d.in_limits * d.limit_value - abs(d.delta)) < 1e-9")" \
  = "$(q "$DB" "SELECT count(*) FROM registrations")" ] || fail "pair_severity_deltas"
# the report: a zone grid per scored film, the global as a trend, JSON
"$X" report --db "$DB" --patient 1543 --out "$T/r" > /dev/null || fail "report"
[ "$(grep -o '<table class="bx' "$T/r/patient_1543.html" | wc -l)" = 8 ] || fail "zone grids"
grep -q "Brixia severity, global (0-18)" "$T/r/patient_1543.html" || fail "no severity trend"
"$X" report --db "$DB" --patient 1543 --out "$T/rj" --format json > /dev/null || fail "report json"
/usr/bin/python3 - "$T/rj/patient_1543.json" "$("$X" sql --db "$DB" --format csv \
    "SELECT group_concat(printf('%.6f', global), ' ') FROM (SELECT global FROM scan_severity
      WHERE patient_id = '1543' ORDER BY visit)" | tr -d '\r' | tail -1)" <<'PY' || fail "report json severity"
import json, sys
d = json.load(open(sys.argv[1]))
got = " ".join("%.6f" % f["severity"]["global"] for f in d["films"])
assert got == sys.argv[2], (got, sys.argv[2])
assert all(sorted(f["severity"]["zones"]) == list("ABCDEF") for f in d["films"])
assert "severity:global" in d["trends"], d["trends"].keys()
PY
"$X" analyze --db "$DB" > "$T/log" 2>&1 || { cat "$T/log"; fail "analyze again"; }
grep -q "analyze: 0 patients" "$T/log" || { cat "$T/log"; fail "a second analyze found work"; }
[ "$(q "$DB" "SELECT count(DISTINCT run_id) FROM film_severity")" = 1 ] || fail "films scored twice"

# heart size: every plausible film measured, as the lungs command reads it
[ "$(q "$DB" "SELECT count(*) FROM lung_fields WHERE NOT heart_measured
               OR (status = 'ok' AND NOT cardiothoracic_ratio BETWEEN 0.3 AND 0.67)")" = 0 ] \
  || fail "heart not measured: $(q "$DB" "SELECT group_concat(cardiothoracic_ratio) FROM lung_fields")"
want=$("$X" lungs --format json "$FILM" | /usr/bin/python3 -c "import json,sys; print('%.4f' % json.load(sys.stdin)['cardiothoracic_ratio'])")
got=$(q "$DB" "SELECT printf('%.4f', l.cardiothoracic_ratio) FROM lung_fields l JOIN scans USING (scan_id) WHERE image_index = '00000001_002.png'")
[ "$want" = "$got" ] || fail "analyze measured $got, lungs $want"
# a series signal like the others: a limit, a flag row per series of 2+
# films, evidence that names it
[ "$(q "$DB" "SELECT count(*) FROM retest_limits WHERE signal = 'cardiothoracic_ratio' AND limit_value >= 0.01")" = 1 ] \
  || fail "no heart size limit"
[ "$(q "$DB" "SELECT count(*) FROM progression_flags WHERE signal = 'cardiothoracic_ratio'")" \
  = "$(q "$DB" "SELECT count(*) FROM progression_flags WHERE signal = 'embedding_distance'")" ] || fail "heart size flags"
[ "$(q "$DB" "SELECT count(*) FROM progression_flags WHERE signal = 'cardiothoracic_ratio'
               AND evidence NOT LIKE 'cardiothoracic ratio (from the lung fields) %'")" = 0 ] || fail "heart size evidence"
# lung fields found before schema 0023: measured on the next run, to the
# same value
"$X" sql --db "$DB" --format csv "SELECT image_index, cardiothoracic_ratio FROM lung_fields JOIN scans USING (scan_id) ORDER BY 1" > "$T/h1"
"$X" sql --write --db "$DB" "UPDATE lung_fields SET heart_measured = 0, cardiothoracic_ratio = NULL" > /dev/null
"$X" analyze --db "$DB" > "$T/log" 2>&1 || { cat "$T/log"; fail "analyze an older store"; }
"$X" sql --db "$DB" --format csv "SELECT image_index, cardiothoracic_ratio FROM lung_fields JOIN scans USING (scan_id) ORDER BY 1" > "$T/h2"
cmp -s "$T/h1" "$T/h2" || { diff "$T/h1" "$T/h2"; fail "older lung fields not measured again"; }
echo "severity: ok"
