#!/bin/sh
# SPDX-License-Identifier: MIT
# The default model through the CLI: predict, analyze --model (one
# embedding, 14 probabilities and 14 activation maps per frontal film,
# nothing redone on a rerun), the SQL distance functions, and the same
# functions loaded into the sqlite3 shell from build/src/cxrsql.so.
set -eu
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
M="$CXR_SOURCE_ROOT/models/cxr-default.safetensors"
S="$CXR_SOURCE_ROOT/sample"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
DB="$T/m.sqlite"
q() { "$CXRTRACK" sql --db "$DB" --format csv "$1" | tr -d '\r' | tail -1; }

"$CXRTRACK" predict --model "$M" --format json "$S/images/00000001_000.png" "$S/images/00000001_002.png" > "$T/p.json"
/usr/bin/python3 - "$T/p.json" <<'PY' || fail "predict json"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 and len(rows[0]["probability"]) == 14, rows
assert all(0 <= v <= 1 for r in rows for v in r["probability"].values())
assert rows[0]["probability"] != rows[1]["probability"]
PY
# A bad model file is refused with its reason.
if "$CXRTRACK" predict --model "$CXR_TEST_DATA/bad/model_overlap.safetensors" "$S/images/00000001_000.png" 2> "$T/err"; then
  fail "bad model accepted"
fi
grep -q "overlap" "$T/err" || fail "bad model message: $(cat "$T/err")"

"$CXRTRACK" ingest --db "$DB" --manifest "$S/manifest.csv" > /dev/null
"$CXRTRACK" analyze --db "$DB" --model "$M" > "$T/out" || { cat "$T/out"; fail "analyze"; }
cat "$T/out"
[ "$(q "SELECT count(*) FROM embeddings")" = 20 ] || fail "embeddings"
[ "$(q "SELECT count(*) FROM predictions")" = 280 ] || fail "predictions"
[ "$(q "SELECT count(*) FROM heatmaps WHERE length(data) = 4 * width * height")" = 280 ] || fail "heatmaps"
[ "$(q "SELECT count(DISTINCT finding) FROM scan_predictions WHERE model = 'cxr-default'")" = 14 ] || fail "view"
# predict and analyze agree on a film
"$CXRTRACK" predict --model "$M" "$S/images/00001543_003.png" | tail -1 | cut -d, -f4 > "$T/eff"
stored=$(q "SELECT printf('%.7f', probability) FROM scan_predictions WHERE image_index = '00001543_003.png' AND finding = 'Effusion'")
[ "$stored" = "$(cat "$T/eff")" ] || fail "predict $(cat "$T/eff") vs stored $stored"
# distances: a film from itself 0; drift from baseline is finite and positive
[ "$(q "SELECT cosine_distance(vector, vector) < 1e-6 FROM embeddings LIMIT 1")" = 1 ] || fail "self distance"
[ "$(q "SELECT count(*) FROM embeddings e JOIN patient_series ps USING (scan_id) JOIN embeddings b ON b.scan_id = ps.baseline_scan_id WHERE e.scan_id <> b.scan_id AND cosine_distance(b.vector, e.vector) > 0")" = 16 ] || fail "drift"
# without --model: the default model, the same file (nothing rescored)
"$CXRTRACK" analyze --db "$DB" > "$T/out2"
grep -q "films scored with cxr-default.*: 0," "$T/out2" || fail "rerun rescored: $(cat "$T/out2")"
[ "$(q "SELECT count(*) FROM models WHERE architecture NOT IN ('cxr-lungnet', 'cxr-brixia-ridge')")" = 1 ] || fail "default model is another file"
"$CXRTRACK" predict "$S/images/00001543_003.png" | tail -1 | cut -d, -f4 > "$T/eff2"
cmp -s "$T/eff" "$T/eff2" || fail "predict's default model differs"
# a missing default is named, and analyze runs on without the classifier
CXRTRACK_MODEL="$T/absent.safetensors" "$CXRTRACK" analyze --db "$DB" > "$T/out3" 2>&1 && fail "absent \$CXRTRACK_MODEL accepted"
grep -q "absent.safetensors" "$T/out3" || fail "absent model message: $(cat "$T/out3")"
EXT="$(dirname "$CXRTRACK")/cxrsql"
# A sanitizer build of the extension needs its runtime loaded into the shell first.
PRE=$(ldd "$EXT.so" | awk '/lib(asan|ubsan)\.so/ {print $3}' | tr '\n' ':')
printf '.load %s\nSELECT round(l2_distance(a.vector, a.vector), 6) FROM embeddings a LIMIT 1;\n' "$EXT" \
  | LD_PRELOAD="$PRE" ASAN_OPTIONS=detect_leaks=0 sqlite3 "$DB" > "$T/shell"
[ "$(cat "$T/shell")" = "0.0" ] || fail "sqlite3 .load: $(cat "$T/shell")"
echo "model: ok"
