#!/bin/sh
# SPDX-License-Identifier: MIT
# The main job on sample/: set up and build, then the whole pipeline on the
# sample series: ingest -> analyze (registration, classifier, difference
# maps, progression flags) -> reports. Prints where everything is: under
# out/, or $CXR_OUT.
set -eu
cd "$(dirname "$0")/.."
tools/setup.sh
# cxrtrack on PATH, as the README's examples use it: the binary, the
# default models, the man page and the SQL extension, under /usr/local
# (or $CXR_PREFIX: a prefix the user owns; CXR_NO_INSTALL=1: none)
if [ -z "${CXR_NO_INSTALL:-}" ]; then
  meson configure build --prefix "${CXR_PREFIX:-/usr/local}" >/dev/null
  meson install -C build --quiet >/dev/null
  echo "installed: $(command -v cxrtrack || echo "${CXR_PREFIX:-/usr/local}/bin/cxrtrack (not on PATH)")" >&2
  # sqlite3's '.load cxrsql' dlopen()s the bare name, which the loader looks
  # up only in the system library folder (ldconfig caches lib*.so names
  # only), so that is where Debian's own SQLite extensions lie
  # (mod_spatialite); a link there to the installed module, when the
  # prefix is /usr/local and the folder is writable
  ma=$(gcc -print-multiarch 2>/dev/null || true)
  mod="${CXR_PREFIX:-/usr/local}/lib/$ma/cxrsql.so"
  if [ -z "${CXR_PREFIX:-}" ] && [ -n "$ma" ] && [ -f "$mod" ] && [ -w "/usr/lib/$ma" ]; then
    ln -sf "$mod" "/usr/lib/$ma/cxrsql.so"
  else
    echo "SQL extension: sqlite3 STORE '.load $mod' (not linked into the system library folder)" >&2
  fi
fi
OUT=${CXR_OUT:-out}
mkdir -p "$OUT"
DB=$OUT/sample.sqlite
X=./build/src/cxrtrack
$X ingest --db "$DB" --manifest sample/manifest.csv
$X analyze --db "$DB" --model models/cxr-default.safetensors
$X report --db "$DB" --all --out "$OUT/report"
$X sql --db "$DB" \
  "SELECT m.patient_id, r.kind, f.visit || '->' || m.visit AS visits, round(r.dx_px, 1) AS dx_px,
          round(r.dy_px, 1) AS dy_px, round(r.angle_deg, 2) AS angle_deg, round(r.scale, 3) AS scale,
          round(r.confidence, 2) AS confidence, r.status, round(c.change_score) AS change_score
     FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id
     JOIN scans m ON m.scan_id = r.moving_scan_id
     LEFT JOIN pair_changes c USING (fixed_scan_id, moving_scan_id, kind)
    ORDER BY m.patient_id, m.visit, r.kind DESC"
$X sql --db "$DB" "SELECT patient_id, visit, view_position AS view, round(global, 1) AS brixia,
                          round(A, 1) AS A, round(B, 1) AS B, round(C, 1) AS C, round(D, 1) AS D,
                          round(E, 1) AS E, round(F, 1) AS F, status
                     FROM scan_severity
                    ORDER BY patient_id, visit"
# which limits the flags were judged against: a store this small has too
# few films of its own (docs/progression.md, "Reference limits")
$X sql --db "$DB" "SELECT CASE WHEN method LIKE 'reference%' THEN 'cxrtrack''s reference (too few films here)'
                          ELSE 'this store''s own' END AS limits_from, count(*) AS signals,
                          sum(visit_source = 'reference') AS reference_visit_limits
                     FROM retest_limits GROUP BY 1"
$X sql --db "$DB" "SELECT patient_id, signal, view_kind, kind, n_visits, round(p_value, 4) AS p
                     FROM progression_flags WHERE kind <> 'insufficient_visits' AND kind <> 'stable'
                    ORDER BY patient_id, p_value"
# the SQL extension in the sqlite3 shell, as the README writes it
if [ -z "${CXR_NO_INSTALL:-}" ] && [ -z "${CXR_PREFIX:-}" ]; then
  sqlite3 "$DB" '.load cxrsql' \
    "SELECT 'sqlite3 .load cxrsql: cosine_distance of the first two films'' embeddings ' ||
            round(cosine_distance(a.vector, b.vector), 4)
       FROM embeddings a JOIN embeddings b ON b.scan_id > a.scan_id AND b.model_id = a.model_id LIMIT 1"
fi
echo "store: $DB (query it: $X sql --db $DB 'SELECT ...')"
echo "difference maps: $DB.artifacts/pairs/"
echo "reports: $OUT/report/index.html"
