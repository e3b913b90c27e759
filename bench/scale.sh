#!/bin/sh
# SPDX-License-Identifier: MIT
# The whole pipeline at cohort scale on this machine, and the projection to
# the NIH release (112,120 films). The cohort: the 196 series1024 films
# (46 patients) and R copies of them under new patient ids and film names
# (tools/replicate_manifest.py; the copies' films are the same files, so
# the calibration must count each content once, and every copy is
# calibrated together with the others). For the original alone and for
# the whole replicated cohort, in one store each: ingest, analyze
# (registration, lung fields, classifier, maps, limits, flags), wall and
# CPU time, peak RSS, store and artifacts size; then the merge of the large
# store into an empty one with the cohort-wide pass (limits and flags), as
# `cxrtrack merge` does after the shards; and reports.
#   bench/scale.sh [BUILD] [R]        (R = 50: 9,996 films)
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
R=${2:-50}
X=$(pwd)/$B/src/cxrtrack
D=../shared/data/nih
T=${CXR_BENCH_DIR:-$(mktemp -d /tmp/cxr-scale.XXXXXX)}
mkdir -p "$T"
export CXR_NO_PROGRESS=1
sh bench/machine.sh
echo "cxrtrack $($X --version | cut -d' ' -f2), work folder $T"

# run NAME CMD...: wall, user+sys CPU, peak RSS of one command
run() {
  name=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$T/time" "$@" > "$T/$name.log" 2>&1 || { cat "$T/$name.log"; exit 1; }
  read -r wall user sys rss < "$T/time"
  cpu=$(echo "$user + $sys" | bc)
  echo "$name $wall $cpu $rss" >> "$T/times"
  printf "  %-34s wall %8.1f s   CPU %8.1f s   peak RSS %6.0f MB\n" "$name" "$wall" "$cpu" "$(echo "$rss / 1024" | bc)"
}

: > "$T/times"
for r in 0 "$R"; do
  python3 tools/replicate_manifest.py --nih $D/Data_Entry_2017_v2020.csv.gz $D/series1024 "$r" > "$T/m$r.csv"
  n=$(($(wc -l < "$T/m$r.csv") - 1))
  rm -rf "$T/s$r.sqlite"*
  echo "cohort: $n films ($((r + 1)) x the 196 of series1024)"
  run "ingest-$n" $X ingest --db "$T/s$r.sqlite" --manifest "$T/m$r.csv"
  run "analyze-$n" $X analyze --db "$T/s$r.sqlite"
  grep -E "registrations|lung fields|difference maps|films scored|progression" "$T/analyze-$n.log" | sed 's/^/    /'
  # the calibration inside analyze is a fixed cost (20 films, re-posed):
  # timed again alone, to see the per-film rate without it
  run "calibrate-$n" $X calibrate --db "$T/s$r.sqlite" --force
  db=$(du -k "$T/s$r.sqlite" | cut -f1); art=$(du -sk "$T/s$r.sqlite.artifacts" | cut -f1)
  maps=$($X sql --db "$T/s$r.sqlite" --format csv "SELECT count(DISTINCT map_path) FROM pair_changes" | tail -1 | tr -d '\r')
  regs=$($X sql --db "$T/s$r.sqlite" --format csv "SELECT count(*) FROM registrations" | tail -1 | tr -d '\r')
  echo "    store $((db / 1024)) MB, artifacts $((art / 1024)) MB ($maps maps, $regs registration rows)"
  echo "$n $db $art $maps $regs" >> "$T/sizes"
done

n=$(tail -1 "$T/sizes" | cut -d' ' -f1)
rm -rf "$T/merged.sqlite"*
echo "merge of the $n-film store into an empty one, then the cohort-wide pass:"
run "merge-copy-$n" $X merge --db "$T/merged.sqlite" --no-analyze "$T/s$R.sqlite"
run "merge-calibrate-$n" $X calibrate --db "$T/merged.sqlite"
run "merge-pass-$n" $X analyze --db "$T/merged.sqlite"
echo "reports of the $n-film store:"
run "report-flagged-$n" $X report --db "$T/s$R.sqlite" --all --flagged --out "$T/rep" --jobs 2
pages=$(ls "$T/rep" | grep -c '^patient_' || true)
echo "    $pages pages, $(du -sm "$T/rep" | cut -f1) MB"

echo
python3 - "$T/times" "$T/sizes" <<'PY'
import sys
t = {}
for line in open(sys.argv[1]):
    k, wall, cpu, rss = line.split()
    name, n = k.rsplit("-", 1)
    t[name, int(n)] = (float(wall), float(cpu), int(rss))
sizes = [list(map(int, l.split())) for l in open(sys.argv[2])]
NIH, REGS_NIH = 112120, 163000
rate = {}
print("films/s (ingest + analyze, wall) and the projection to the NIH release (112,120 films):")
for n, db_kb, art_kb, maps, regs in sizes:
    w = t["ingest", n][0] + t["analyze", n][0]
    c = t["ingest", n][1] + t["analyze", n][1]
    rate[n] = n / w
    print(f"  {n:6d} films: {n / w:5.1f} films/s, {c / n:.3f} CPU-s per film, peak RSS "
          f"{max(t['ingest', n][2], t['analyze', n][2]) / 1024:.0f} MB; store {db_kb / 1024:.0f} MB + artifacts "
          f"{art_kb / 1024:.0f} MB ({art_kb / max(maps, 1):.0f} KB per map pair incl. lung masks)")
    print(f"          NIH at this rate: {NIH / rate[n] / 3600:.2f} h wall on this machine; "
          f"store ~{db_kb / 1024 / 1024 * NIH / n:.1f} GB + artifacts ~{art_kb / 1024 / 1024 * NIH / n:.1f} GB")
(s, *_), (b, *_) = sizes[0], sizes[-1]
print(f"  linearity: films/s at {b} films = {100 * rate[b] / rate[s]:.0f} % of films/s at {s} films "
      f"(target: within 10 %); peak RSS {t['analyze', s][2] / 1024:.0f} MB -> {t['analyze', b][2] / 1024:.0f} MB")
net = {n: n / (t["ingest", n][0] + t["analyze", n][0] - t["calibrate", n][0]) for n in (s, b)}
print(f"  without the fixed cost of the calibration ({t['calibrate', s][0]:.1f} s): {net[s]:.1f} and "
      f"{net[b]:.1f} films/s, {100 * net[b] / net[s]:.0f} %; NIH at {net[b]:.1f} films/s: "
      f"{NIH / net[b] / 3600:.2f} h + the calibration")
mc, mk, mp = t["merge-copy", b][0], t["merge-calibrate", b][0], t["merge-pass", b][0]
print(f"  merge of {b} films: copy {mc:.1f} s, calibration {mk:.1f} s (fixed), flags {mp:.1f} s; "
      f"projected to 112,120 films: {((mc + mp) * NIH / b + mk) / 60:.1f} min (target <= 2 min)")
if ("report-flagged", b) in t:
    print(f"  report --flagged --jobs 2 of {b} films: {t['report-flagged', b][0]:.1f} s")
PY
