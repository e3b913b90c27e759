#!/bin/sh
# SPDX-License-Identifier: MIT
# Reports over the analysed sample, checked in a real browser: Debian's
# chromium (installed if missing) renders every page headless; every image
# must decode (the page records it in data-images-ok), no console message
# may appear (the pages log nothing, so any is an error), and the
# screenshot must not be blank. The screenshot stays in the build folder.
set -eu
# the store's own limits from its few films, as before reference limits existed:
# this test checks what flags do, and the sample alone raises none against
# the reference (tests/cli/limits.sh)
export CXRTRACK_REFERENCE_LIMITS=
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}" "${CXR_PNG_STATS:?}" "${CXR_BUILD_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
if ! command -v chromium >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "skip: chromium missing and not root"; exit 77; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || fail "could not install chromium"
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
DB="$T/r.sqlite"
S="$CXR_SOURCE_ROOT/sample"
"$CXRTRACK" ingest --db "$DB" --manifest "$S/manifest.csv" > /dev/null
"$CXRTRACK" analyze --db "$DB" --model "$CXR_SOURCE_ROOT/models/cxr-default.safetensors" > /dev/null
q() { "$CXRTRACK" sql --db "$DB" --format csv "$1" | tr -d '\r' | tail -1; }
# every map has its trend score, at a threshold below the single-pair one
[ "$(q "SELECT count(*) FROM pair_changes WHERE trend_score IS NULL OR trend_score < change_score OR trend_threshold >= threshold")" = 0 ] \
  || fail "trend_score"
[ "$(q "SELECT count(*) FROM retest_limits WHERE signal = 'trend_score' AND limit_value >= 1")" = 1 ] || fail "trend_score limit"
# a map stored before the trend score existed is made again by the next run
"$CXRTRACK" sql --db "$DB" --write "UPDATE pair_changes SET trend_score = NULL, trend_threshold = NULL WHERE (fixed_scan_id, moving_scan_id, kind) IN (SELECT fixed_scan_id, moving_scan_id, kind FROM pair_changes LIMIT 1)" > /dev/null
"$CXRTRACK" analyze --db "$DB" > "$T/again"
grep -q "difference maps 1," "$T/again" || fail "old map not remade: $(cat "$T/again")"
[ "$(q "SELECT count(*) FROM pair_changes WHERE trend_score IS NULL")" = 0 ] || fail "trend_score still missing"
"$CXRTRACK" report --db "$DB" --all --out "$T/r" > "$T/out" || { cat "$T/out"; fail "report --all"; }
# pages written in parallel are the pages written one at a time
"$CXRTRACK" report --db "$DB" --all --out "$T/r1" --jobs 1 > /dev/null || fail "report --jobs 1"
for f in "$T"/r/*.html; do cmp -s "$f" "$T/r1/$(basename "$f")" || fail "$(basename "$f") differs with --jobs 1"; done
[ "$(ls "$T/r1" | grep -c '^patient_')" = 4 ] || fail "pages with --jobs 1: $(ls "$T/r1")"
# --flagged: the index, and the flagged patients' pages only
"$CXRTRACK" report --db "$DB" --all --flagged --out "$T/rf" > /dev/null || fail "report --flagged"
nf=$(q "SELECT count(DISTINCT patient_id) FROM progression_flags WHERE kind IN ('slow_progression', 'acute_change', 'unconfirmed_change')")
[ "$(ls "$T/rf" | grep -c '^patient_')" = "$nf" ] || fail "--flagged wrote $(ls "$T/rf" | grep -c '^patient_') pages for $nf flagged patients"
[ -f "$T/rf/index.html" ] || fail "--flagged: no index"
# the change overlays are drawn from the stored 8-bit maps
[ "$(q "SELECT count(*) FROM pair_changes WHERE map_path LIKE '%.map.png' AND map_scale > 0 AND overlay_path IS NULL")" \
  = "$(q "SELECT count(*) FROM pair_changes")" ] || fail "maps not stored as 8-bit PNG with a scale"
grep -q 'alt="difference"' "$T/r/patient_1543.html" || fail "no change overlay on the page"
# the page opens with the summary, then one box per event
for p in "$T"/r/patient_*.html; do
  head -c 200000 "$p" | grep -o '<div class="summary v-[a-z_]*">\|<h2>Events</h2>' | head -2 | tr -d '\n' \
    | grep -q '^<div class="summary v-[a-z_]*"><h2>Events</h2>$' || fail "$p: no summary before the events"
  grep -q "supports a radiologist's read; it does not replace it" "$p" || fail "$p: no statement of what it is not"
done
grep -q "and 4 patient pages" "$T/out" || fail "pages: $(cat "$T/out")"
"$CXRTRACK" report --db "$DB" --patient 2633 --out "$T/r" --format json > /dev/null
/usr/bin/python3 - "$T/r/patient_2633.json" "$DB" <<'PY' || fail "json report"
import json, sqlite3, sys
d = json.load(open(sys.argv[1]))
assert d["patient_id"] == "2633" and len(d["films"]) == 5 and len(d["pairs"]) == 8, d.keys()
# every number as short as it reads back (not 0.33333333333333331)
import re
raw = re.sub(r'"(?:[^"\\]|\\.)*"', '""', open(sys.argv[1]).read())  # numbers outside strings
toks = re.findall(r'(?<![\w".])-?\d+\.\d+(?:[eE][-+]?\d+)?', raw)
assert toks and all(len(t) <= len(repr(float(t))) for t in toks), [t for t in toks if len(t) > len(repr(float(t)))][:5]
assert d["model"] == "cxr-default" and "probability:Effusion" in d["trends"], d["trends"].keys()
# a trend set per view (the flags compare films of one view): AP, the more
# frequent, then PA; each signal a value per film of its set
for key, view in (("trends", "AP"), ("other_view_trends", "PA")):
    t = d[key]
    visits = [f["visit"] for f in d["films"] if f["view_kind"] == view and f["status"] == "ok"]
    assert len(visits) == (3 if view == "AP" else 2), (view, d["films"])
    assert t["view"] == view and t["visits"] == visits, (key, t["view"], t["visits"])
    assert all(len(v) == len(visits) for k, v in t.items() if k not in ("view", "time_axis", "visits")), t
assert any(p["cross_view"] for p in d["pairs"])
# the summary: every flag in exactly one event, the events' visits those of
# their flags' steps, and the verdict as the events' directions make it
sm = d["summary"]
assert sm["verdict"] in ("worse", "better", "stable", "mixed", "not_enough_films"), sm
keys = {"kind", "signals", "zones", "from_date", "to_date", "visits", "limit", "limit_source", "p"}
assert sm["events"] and all(keys <= set(e) for e in sm["events"]), sm["events"]
flagged = sorted(f["signal"] + "/" + f["view_kind"] for f in d["flags"])
assert sorted(s + "/" + e["view"] for e in sm["events"] for s in e["signals"]) == flagged, (flagged, sm)
directional = ("probability:", "severity:", "lung_area_loss:")
dirs = set()
for e in sm["events"]:
    want = ("better" if e["kind"] == "improving" else
            "worse" if any(s.startswith(directional) for s in e["signals"]) else "changed")
    assert e["direction"] == want, e
    assert e["zones"] == [s[9:] for s in e["signals"] if s.startswith("severity:") and len(s) == 10], e
    dirs.add(want)
    assert all(x["limit"] > 0 and x["limit_source"] in ("retest", "visits", "reference", "reference_visits") for x in e["details"]), e
want = ("mixed" if {"worse", "better"} <= dirs else "worse" if "worse" in dirs else
        "better" if dirs == {"better"} else "mixed" if dirs else "stable")
assert sm["verdict"] == want, (sm["verdict"], want)
# each pair's largest probability change in units of its finding's limit,
# made again from the predictions and limits
con = sqlite3.connect(sys.argv[2])
sid = dict(con.execute("SELECT image_index, scan_id FROM scans"))
mid = con.execute("SELECT model_id FROM models WHERE name = 'cxr-default'").fetchone()[0]
lim = {s[12:]: max(v, w or 0) for s, v, w in con.execute(
    "SELECT signal, limit_value, visit_limit FROM retest_limits WHERE signal LIKE 'probability:%'")}
assert len(lim) == 14, lim
def prob(f):
    return dict(con.execute("SELECT finding, probability FROM predictions WHERE scan_id = ? AND model_id = ?",
                            (sid[f], mid)))
for p in d["pairs"]:
    a, b = prob(p["fixed"]), prob(p["moving"])
    k = max(lim, key=lambda k: abs(b[k] - a[k]) / lim[k])
    assert p["probability_change_finding"] == k, (p, k)
    assert abs(p["probability_change_in_limits"] - abs(b[k] - a[k]) / lim[k]) < 1e-9, p
    assert abs(p["probability_change_delta"] - (b[k] - a[k])) < 1e-12, p
    # and every finding beyond its limit: rises first, each by its size in limits
    want = sorted((f for f in lim if abs(b[f] - a[f]) / lim[f] > 1),
                  key=lambda f: (b[f] - a[f] < 0, -abs(b[f] - a[f]) / lim[f]))
    got = p["probability_changes_beyond_limits"]
    assert [x["finding"] for x in got] == want, (p, want)
    for x in got:
        f = x["finding"]
        assert abs(x["delta"] - (b[f] - a[f])) < 1e-12 and abs(x["in_limits"] - abs(b[f] - a[f]) / lim[f]) < 1e-9, x
assert any(p["probability_changes_beyond_limits"] for p in d["pairs"]), "no pair with a change beyond its limit"
# the flags compare films of one view: each change of view whose later film
# has findings risen beyond their limits is named beside the flags
films = {f["image_index"]: f for f in d["films"]}
html = open(sys.argv[1][:-5] + ".html").read()
named = 0
for p in d["pairs"]:
    rises = [x for x in p["probability_changes_beyond_limits"] if x["delta"] > 0]
    a, b = films[p["fixed"]], films[p["moving"]]
    head = (f"not compared by the flags</b> ({a['view_kind']} &rarr; {b['view_kind']}, visits {a['visit']}"
            f" &rarr; {b['visit']}): rose ")
    if p["kind"] == "previous" and p["cross_view"] and rises:
        x = rises[0]
        assert head + f"{x['finding']} {x['delta']:+.3f} ({x['in_limits']:.2f}&times;)" in html, (head, x)
        named += 1
    else:
        assert head not in html or p["kind"] != "previous", head
assert named > 0, "no change of view named"
PY
grep -q "largest probability change: [A-Za-z_]* [+-]0\.[0-9]*, [0-9.]*&times; its limit" "$T/r/patient_2633.html" \
  || fail "no probability change on the page"
grep -q "beyond their limits: \(rose\|fell\) [A-Za-z_]* [+-]0\.[0-9]* ([0-9.]*&times;)" "$T/r/patient_2633.html" \
  || fail "no list of the changes beyond their limits on the page"
[ "$(grep -o '<h2 id="trends-[A-Z]*">' "$T/r/patient_2633.html" | tr -d '\n')" \
  = '<h2 id="trends-AP"><h2 id="trends-PA">' ] || fail "not a trend section per view on 2633's page"
# self-contained: no external references
if grep -l -E '(src|href)="(https?:|//|file:)' "$T"/r/*.html; then fail "external assets"; fi
CH="chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync --enable-logging=stderr --v=0 --user-data-dir=$T/profile"
for page in "$T"/r/*.html; do
  timeout 120 $CH --virtual-time-budget=10000 --dump-dom "file://$page" > "$T/dom" 2> "$T/log" || fail "chromium on $page"
  ok=$(grep -o 'data-images-ok="[0-9]*/[0-9]*"' "$T/dom" | head -1 | sed 's/.*="\(.*\)"/\1/')
  [ -n "$ok" ] || fail "$page: the page did not finish loading"
  [ "${ok%/*}" = "${ok#*/}" ] || fail "$page: only $ok images decoded"
  if grep -q ':CONSOLE' "$T/log"; then grep ':CONSOLE' "$T/log" >&2; fail "$page: console messages"; fi
  echo "$(basename "$page"): $ok images decoded, no console messages"
done
[ "$(grep -o 'data-images-ok="[0-9]*' "$T/dom" | head -1)" != 'data-images-ok="0' ] || true
SHOT="$CXR_BUILD_DIR/report-screenshot.png"
timeout 120 $CH --window-size=1280,1800 --screenshot="$SHOT" "file://$T/r/patient_1543.html" 2> /dev/null || fail "screenshot"
set -- $("$CXR_PNG_STATS" "$SHOT")
echo "screenshot $SHOT: ${1}x${2}, mean $3, std $4"
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$4') > 20 else 1)" || fail "screenshot is blank (std $4)"
echo "report: ok"
