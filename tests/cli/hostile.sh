#!/bin/sh
# SPDX-License-Identifier: MIT
# The hostile-input suite: each case is a reproducer of something cxrtrack
# once did wrong (one patient's data shown as another's, a read-only store
# written, a script from metadata run in a report, a hang, a batch stopped
# by one bad item), and what it must do instead.
set -eu
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
X=$CXRTRACK
T=$(mktemp -d); trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
S="$CXR_SOURCE_ROOT/sample/images"
q() { "$X" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -n +2; }
# a command that must end by itself (a hang fails the case, not the suite)
within() { timeout 60 "$@"; rc=$?; [ $rc -ne 124 ] || fail "hung: $*"; return $rc; }

# Every case runs, in order (later cases reuse earlier stores); the suite
# fails if any did, and says which.
failed=""
run_case () {
  echo "== $1"
  if ! ( set -e; "$2" ); then failed="$failed
  $1"; fi
}

case_1 () {
  mkdir "$T/n"
  for f in 1 2 3 4 5 6 7 8; do cp "$S/00001543_00$((f - 1)).png" "$T/n/f$f.png"; done
  cat > "$T/n/m.csv" <<'EOF'
patient_id,path,visit,image_index,view_position
a/b,f1.png,0,a/1,PA
a/b,f2.png,1,a/2,PA
a_b,f3.png,0,a_1,PA
a_b,f4.png,1,a_2,PA
c,f5.png,0,x__y,PA
c,f6.png,1,z,PA
d,f7.png,0,x,PA
d,f8.png,1,y__z,PA
EOF
  "$X" ingest --db "$T/n.sqlite" --manifest "$T/n/m.csv" > /dev/null
  "$X" analyze --db "$T/n.sqlite" --no-model > /dev/null
  [ "$(q "$T/n.sqlite" "SELECT count(DISTINCT map_path) FROM pair_changes")" = 4 ] \
    || fail "maps share names: $(q "$T/n.sqlite" "SELECT map_path FROM pair_changes")"
  for p in $(q "$T/n.sqlite" "SELECT map_path FROM pair_changes"); do
    [ -f "$T/n.sqlite.artifacts/$p" ] || fail "map $p not written"
  done
  "$X" report --db "$T/n.sqlite" --all --out "$T/n/r" > /dev/null
  [ "$(ls "$T/n/r" | grep -c '^patient_')" = 4 ] || fail "pages: $(ls "$T/n/r")"
  [ -f "$T/n/r/patient_a=2Fb.html" ] && [ -f "$T/n/r/patient_a_b.html" ] || fail "page names: $(ls "$T/n/r")"
  grep -q '<a href="patient_a%3D2Fb.html">a/b</a>' "$T/n/r/index.html" || fail "index link"
}

case_2 () {
  printf 'patient_id,path,visit,sex\nA\000x,f1.png,0,M\nA\000y,f2.png,1,F\nB,f3.png,0,Ma\000ss\n' > "$T/n/nul.csv"
  /usr/bin/python3 - "$T/n/nul.csv" <<'PY'
import sys
with open(sys.argv[1], "ab") as f:
    f.write(b'C,"' + b"x" * (1 << 20) + b'",0,F\nD,f4.png,0,F\n')
PY
  "$X" ingest --db "$T/nul.sqlite" --manifest "$T/n/nul.csv" > "$T/out" || fail "ingest stopped: $(cat "$T/out")"
  grep -q "nul.csv:2: field 1 holds a NUL byte" "$T/out" || fail "$(cat "$T/out")"
  grep -q "nul.csv:4: field 4 holds a NUL byte" "$T/out" || fail "$(cat "$T/out")"
  grep -q "nul.csv:5: record longer than 1048576 bytes" "$T/out" || fail "$(cat "$T/out")"
  [ "$(q "$T/nul.sqlite" "SELECT group_concat(patient_id) FROM patients")" = D ] || fail "patients"
}

case_3 () {
  mkdir "$T/c"
  cp "$S/00000001_000.png" "$T/c/a.png"; cp "$S/00000001_001.png" "$T/c/b.png"
  printf 'patient_id,path,visit\nP,a.png,0\nP,b.png,1\n' > "$T/c/m.csv"
  "$X" ingest --db "$T/c.sqlite" --manifest "$T/c/m.csv" > /dev/null
  "$X" analyze --db "$T/c.sqlite" --no-model > /dev/null
  cp "$S/00001543_000.png" "$T/c/b.png"
  "$X" report --db "$T/c.sqlite" --patient P --out "$T/c/r" > /dev/null 2> "$T/err"
  grep -q "1 films changed on disk since they were ingested" "$T/err" || fail "report: $(cat "$T/err")"
  grep -q "file changed since ingest: not shown" "$T/c/r/patient_P.html" || fail "page does not say so"
  cp "$S/00000001_002.png" "$T/c/c.png"; printf 'P,c.png,2\n' >> "$T/c/m.csv"
  "$X" ingest --db "$T/c.sqlite" --manifest "$T/c/m.csv" > "$T/out"
  grep -q "conflicts 1" "$T/out" || fail "re-ingest: $(cat "$T/out")"
  "$X" analyze --db "$T/c.sqlite" --no-model > /dev/null
  [ "$(q "$T/c.sqlite" "SELECT count(*) FROM registrations r JOIN scans m ON m.scan_id = r.moving_scan_id WHERE m.image_index = 'c.png' AND r.kind = 'previous' AND r.status = 'failed' AND r.reason LIKE '%b.png: changed since it was ingested%'")" = 1 ] \
    || fail "analyze used the changed film: $(q "$T/c.sqlite" "SELECT status, reason FROM registrations")"
}

case_4 () {
  cp "$T/n.sqlite" "$T/copy.sqlite"
  "$X" report --db "$T/copy.sqlite" --all --out "$T/copy" > /dev/null 2> "$T/err"
  grep -q "4 difference maps named in the store are not in" "$T/err" || fail "missing maps not reported: $(cat "$T/err")"
  grep -q "is missing from the store's artifacts folder" "$T/copy/patient_c.html" || fail "page"
  cp -r "$T/n.sqlite.artifacts" "$T/copy.sqlite.artifacts"
  "$X" report --db "$T/copy.sqlite" --all --out "$T/copy" > /dev/null 2> "$T/err"
  [ ! -s "$T/err" ] || fail "renamed store with its folder: $(cat "$T/err")"
  grep -q 'alt="difference"' "$T/copy/patient_c.html" || fail "maps of the renamed store"
}

case_5 () {
  DB="$T/n.sqlite"
  before=$(q "$DB" "SELECT count(*) FROM registrations")
  for sql in "PRAGMA query_only=0; DELETE FROM registrations" "DELETE FROM registrations" \
             "PRAGMA writable_schema=ON" "VACUUM INTO '$T/stolen.sqlite'" "VACUUM" \
             "PRAGMA journal_mode=DELETE" "ATTACH '$T/new.sqlite' AS x" \
             "SELECT load_extension('/nonexistent')" "CREATE TABLE t (a)" \
             "PRAGMA user_version = 3" "UPDATE scans SET sex = 'X'"; do
    if "$X" sql --db "$DB" "$sql" > /dev/null 2> "$T/err"; then fail "allowed read-only: $sql"; fi
    grep -q "opened read-only" "$T/err" || fail "$sql: $(cat "$T/err")"
  done
  [ ! -e "$T/stolen.sqlite" ] && [ ! -e "$T/new.sqlite" ] || fail "a file was written"
  [ "$(q "$DB" "SELECT count(*) FROM registrations")" = "$before" ] || fail "rows deleted"
  # still a WAL database: bytes 18 and 19 of the header are 2
  /usr/bin/python3 -c "import sys; h = open(sys.argv[1], 'rb').read(20); sys.exit(h[18:20] != bytes([2, 2]))" "$DB" \
    || fail "journal mode changed"
  q "$DB" "PRAGMA table_info(scans)" > /dev/null || fail "a reading PRAGMA refused"
  # a store in a folder this user cannot write to is still readable
  if [ "$(id -u)" != 0 ]; then
    mkdir "$T/ro"; cp "$DB" "$T/ro/s.sqlite"; chmod a-w "$T/ro"
    q "$T/ro/s.sqlite" "SELECT count(*) FROM scans" > "$T/out" 2> "$T/err" || fail "read-only folder: $(cat "$T/err")"
    grep -q "read as immutable" "$T/err" || fail "no note: $(cat "$T/err")"
  else
    echo "   (root: a read-only folder cannot be made here; tests/cli/hostile.sh checks it as a user)"
  fi
}

case_6 () {
  mkdir "$T/x"
  cp "$S/00000001_000.png" "$T/x/a.png"; cp "$S/00000001_001.png" "$T/x/b.png"
  cat > "$T/x/m.csv" <<'EOF'
patient_id,path,visit,view_position,sex,finding_labels,image_index
"q""><script>document.body.setAttribute('data-pwned','id')</script>",a.png,0,<img src=x onerror="document.body.setAttribute('data-pwned','view')">,<svg onload="document.body.setAttribute('data-pwned','sex')">,<b>x</b>,<script>document.body.setAttribute('data-pwned','index')</script>
"q""><script>document.body.setAttribute('data-pwned','id')</script>",b.png,1,PA,M,Effusion,b.png
EOF
  /usr/bin/python3 - "$T/x/m.csv" <<'PY'
import sys
with open(sys.argv[1], "ab") as f:  # a label that is not UTF-8
    pass
rows = open(sys.argv[1], "rb").read().replace(b"Effusion", b"Eff\xffusion\xc3")
open(sys.argv[1], "wb").write(rows)
PY
  "$X" ingest --db "$T/x.sqlite" --manifest "$T/x/m.csv" > /dev/null
  "$X" analyze --db "$T/x.sqlite" --model "$CXR_SOURCE_ROOT/models/cxr-default.safetensors" > /dev/null
  "$X" report --db "$T/x.sqlite" --all --out "$T/x/r" > /dev/null
  "$X" sql --db "$T/x.sqlite" --format json "SELECT * FROM scans" > "$T/x/scans.json"
  /usr/bin/python3 - "$T/x/r" "$T/x/scans.json" <<'PY' || fail "escaping"
import json, os, sys
for f in os.listdir(sys.argv[1]):
    b = open(os.path.join(sys.argv[1], f), "rb").read()
    b.decode("utf-8")  # valid UTF-8, whatever the metadata held
    s = b.decode()
    for bad in ("<script>document.body", "<img src=x", "<svg onload", "<b>x</b>"):
        assert bad not in s, (f, bad)
    assert "Content-Security-Policy" in s and "script-src 'sha256-" in s, f
json.loads(open(sys.argv[2], "rb").read().decode("utf-8"))
PY
  if command -v chromium > /dev/null 2>&1; then
    CH="chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync --user-data-dir=$T/profile"
    for page in "$T"/x/r/*.html; do
      timeout 120 $CH --virtual-time-budget=5000 --dump-dom "file://$page" > "$T/dom" 2> /dev/null || fail "chromium: $page"
      grep -q 'data-images-ok=' "$T/dom" || fail "$page: the page's own script did not run"
      if grep -q 'data-pwned="' "$T/dom"; then fail "$page: a script from the metadata ran"; fi
    done
  else
    echo "   (chromium missing: the pages were checked as text only)"
  fi
}

case_7 () {
  mkdir "$T/h"
  cp "$S/00000001_000.png" "$T/h/a.png"; mkfifo "$T/h/b.png"; mkdir "$T/h/c.png"
  ln -s /dev/zero "$T/h/d.png"
  printf 'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\n' > "$T/h/nih.csv"
  for f in a b c d; do printf '%s.png,No Finding,0,%s,40,M,PA\n' $f $f >> "$T/h/nih.csv"; done
  within "$X" ingest --db "$T/h.sqlite" --nih "$T/h/nih.csv" --images "$T/h" --follow-symlinks > "$T/out" || true
  grep -q "b.png: is a FIFO" "$T/out" || fail "fifo: $(cat "$T/out")"
  grep -q "c.png: is a folder" "$T/out" || fail "folder: $(cat "$T/out")"
  grep -q "d.png: is a device" "$T/out" || fail "device: $(cat "$T/out")"
  [ "$(q "$T/h.sqlite" "SELECT group_concat(status || ':' || (error IS NOT NULL), ' ') FROM (SELECT * FROM scans ORDER BY image_index)")" = "ok:0 invalid:1 invalid:1 invalid:1" ] || fail "statuses"
  within "$X" register "$T/h/b.png" "$T/h/a.png" > /dev/null 2> "$T/err" && fail "register read a FIFO"
  grep -q "is a FIFO" "$T/err" || fail "register: $(cat "$T/err")"
  # a stored film replaced by a FIFO
  cp "$S/00000001_000.png" "$T/h/e.png"; cp "$S/00000001_001.png" "$T/h/f.png"
  printf 'patient_id,path,visit\nE,e.png,0\nE,f.png,1\n' > "$T/h/m.csv"
  "$X" ingest --db "$T/h2.sqlite" --manifest "$T/h/m.csv" > /dev/null
  rm "$T/h/f.png"; mkfifo "$T/h/f.png"
  within "$X" analyze --db "$T/h2.sqlite" --no-model > "$T/out" || fail "analyze: $(cat "$T/out")"
  grep -q "f.png: is a FIFO" "$T/out" || fail "analyze fifo: $(cat "$T/out")"
  within "$X" report --db "$T/h2.sqlite" --all --out "$T/h/r" > /dev/null || fail "report"
}

case_8 () {
  mkdir "$T/l" "$T/outside"
  cp "$S/00000001_000.png" "$T/outside/secret.png"; ln -s "$T/outside/secret.png" "$T/l/s.png"
  cp "$S/00000001_001.png" "$T/l/t.png"
  printf 'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\ns.png,x,0,L,40,M,PA\nt.png,x,1,L,40,M,PA\n' > "$T/l/nih.csv"
  "$X" ingest --db "$T/l.sqlite" --nih "$T/l/nih.csv" --images "$T/l" > "$T/out"
  grep -q "s.png: a symbolic link to .*secret.png, outside the input folders" "$T/out" || fail "link: $(cat "$T/out")"
  [ "$(q "$T/l.sqlite" "SELECT status || ':' || (sha256 IS NULL) FROM scans WHERE image_index = 's.png'")" = "invalid:1" ] || fail "link's hash stored"
  "$X" ingest --db "$T/l2.sqlite" --nih "$T/l/nih.csv" --images "$T/l" --follow-symlinks > /dev/null
  [ "$(q "$T/l2.sqlite" "SELECT status FROM scans WHERE image_index = 's.png'")" = ok ] || fail "--follow-symlinks"
}

case_9 () {
  mkdir "$T/long"
  long=$(/usr/bin/python3 -c "print('p' * 300)"); longi=$(/usr/bin/python3 -c "print('i' * 250)")
  cp "$S/00000001_000.png" "$T/long/a.png"; cp "$S/00000001_001.png" "$T/long/b.png"
  printf 'patient_id,path,visit,image_index\n%s,a.png,0,%s.png\n%s,b.png,1,%s2.png\n' "$long" "$longi" "$long" "$longi" > "$T/long/m.csv"
  "$X" ingest --db "$T/long.sqlite" --manifest "$T/long/m.csv" > /dev/null
  "$X" analyze --db "$T/long.sqlite" --no-model > "$T/out"
  grep -q "difference maps 1," "$T/out" || fail "long index: $(cat "$T/out")"
  "$X" report --db "$T/long.sqlite" --all --out "$T/long/r" > "$T/out" || fail "report: $(cat "$T/out")"
  grep -q "and 1 patient pages" "$T/out" || fail "long id page: $(cat "$T/out")"
}

case_10 () {
  /usr/bin/python3 - "$CXR_SOURCE_ROOT/models/cxr-default.safetensors" "$T" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n]); data = bytearray(raw[8 + n:])
name = sorted(k for k in hdr if k != "__metadata__")[0]
o = hdr[name]["data_offsets"][0]
data[o:o + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2] + "/nan.safetensors", "wb").write(raw[:8 + n] + bytes(data))
m = hdr["__metadata__"]; cls = m["classes"].split("|"); m["classes"] = "|".join(["Mass"] * len(cls))
h = json.dumps(hdr).encode()
open(sys.argv[2] + "/mass.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
PY
  "$X" predict --model "$T/nan.safetensors" "$S/00000001_000.png" > /dev/null 2> "$T/err" && fail "NaN model loaded"
  grep -q "holds NaN at element 0" "$T/err" || fail "nan: $(cat "$T/err")"
  "$X" predict --model "$T/mass.safetensors" "$S/00000001_000.png" > /dev/null 2> "$T/err" && fail "Mass model loaded"
  grep -q "classes name 'Mass' twice" "$T/err" || fail "mass: $(cat "$T/err")"
}

case_11 () {
  mkdir "$T/k"
  for v in 0 1 2 3 4 5; do cp "$S/00001543_00$v.png" "$T/k/v$v.png"; done
  { echo "patient_id,path,visit"; for v in 0 1 2 3 4 5; do echo "K,v$v.png,$v"; done; } > "$T/k/m.csv"
  "$X" ingest --db "$T/k.sqlite" --manifest "$T/k/m.csv" > /dev/null
  "$X" analyze --db "$T/k.sqlite" --no-model --jobs 1 > "$T/first" 2>&1 &
  pid=$!
  sleep 0.3
  if "$X" analyze --db "$T/k.sqlite" --no-model > "$T/second" 2>&1; then
    wait $pid
    grep -q "analyze: 0 patients" "$T/second" || fail "second analyze ran at once: $(cat "$T/second")"
  else
    grep -q "another cxrtrack command is writing to this store (analyze, pid $pid" "$T/second" \
      || fail "second analyze: $(cat "$T/second")"
    wait $pid || fail "first analyze: $(cat "$T/first")"
  fi
  [ "$(q "$T/k.sqlite" "SELECT count(*) FROM registrations")" = 10 ] || fail "rows"
  "$X" sql --db "$T/k.sqlite" --write "INSERT INTO runs (command, argv, version, started_at) VALUES ('analyze', 'killed', '0', '2026-01-01')" > /dev/null
  "$X" analyze --db "$T/k.sqlite" --no-model > /dev/null
  [ "$(q "$T/k.sqlite" "SELECT status FROM runs WHERE argv = 'killed'")" = interrupted ] || fail "not marked"
}

case_12 () {
  umask 022
  [ "$(stat -c %a "$T/k.sqlite")" = 600 ] || fail "store mode $(stat -c %a "$T/k.sqlite")"
  [ "$(stat -c %a "$T/n.sqlite.artifacts")" = 700 ] || fail "artifacts mode"
  [ "$(stat -c %a "$T/n/r/index.html")" = 600 ] || fail "report mode"
  printf 'who,what\n1,2\n' > "$T/bad.csv"
  "$X" ingest --db "$T/bad.sqlite" --manifest "$T/bad.csv" > "$T/out" 2>&1 && fail "bad header accepted"
  if grep -q "run -1" "$T/out"; then fail "run -1: $(cat "$T/out")"; fi
}

run_case "output names never collide, whatever the ids" case_1
run_case "a NUL byte never merges patients; a record over 1 MB is rejected alone" case_2
run_case "a film replaced after ingest is never shown or measured as the ingested one" case_3
run_case "artifact paths do not depend on the store's name" case_4
run_case "read-only is read-only" case_5
run_case "no script from the metadata runs in a report" case_6
run_case "nothing hangs on a FIFO, a device or a folder" case_7
run_case "a link out of the input folders is not followed unless asked" case_8
run_case "long ids: every output name is bounded" case_9
run_case "a model with a NaN weight or one class name twice is refused at load" case_10
run_case "one writer at a time; a killed run is marked interrupted" case_11
run_case "the store and its artifacts are private; a refused header names no run" case_12

if [ -n "$failed" ]; then
  echo "hostile: failed:$failed" >&2
  exit 1
fi
echo "hostile: ok"
