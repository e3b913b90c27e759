#!/bin/sh
# SPDX-License-Identifier: MIT
# ingest --dicomweb against a real PACS: Debian's Orthanc with its DICOMweb
# plugin, on 127.0.0.1 (a free port, storage in a temporary folder, HTTP
# Basic authentication), loaded with sample/ written as DICOM plus a
# lateral, a hand, an undated film and a report (SR) filed into a film's
# study. The pull stores exactly what `ingest --dicom` stores from the same
# files, fetches the SR not at all, and a second pull fetches nothing; a
# pull killed between fetching and storing resumes from its cache; --patient
# and --since narrow the search. Then a server that answers badly
# (tools/fake_dicomweb.py: HTTP 500 and 503, a truncated multipart, HTML
# instead of DICOM, a stall, 2 GiB announced, a UID that is a path) gives
# one clear line per failure, stores the one good film, and loses nothing
# already stored. Then the store is analyzed and pushed back (one SR per
# comparison, one secondary capture per map, checked by check_pushed.py; a
# second push sends nothing), and `watch` sees a new film stored in Orthanc
# and puts its SR and SC back; started again it sends nothing; with the
# PACS gone it says so per poll. Skipped (77) only where Orthanc cannot be
# installed.
set -eu
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
. "$CXR_SOURCE_ROOT/tools/orthanc.sh"
if ! orthanc_available; then
  echo "SKIP: Orthanc and its DICOMweb plugin are not installed (apt-get install orthanc orthanc-dicomweb)"
  exit 77
fi
T=$(mktemp -d)
ORTHANC_PID=""
FPID=""
cleanup() {
  [ -n "$ORTHANC_PID" ] && kill "$ORTHANC_PID" 2> /dev/null
  [ -n "$FPID" ] && kill "$FPID" 2> /dev/null
  wait 2> /dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=/usr/bin/python3
q() { "$CXRTRACK" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -n +2; }

# --- a PACS ---------------------------------------------------------------
orthanc_start "$T" cxr:s3cret
URL=$ORTHANC_URL

# sample/ as DICOM, the odd films, and a report filed into a film's study
(cd "$CXR_SOURCE_ROOT" && $PY tools/make_test_dicoms.py sample sample/manifest.csv "$T/pacs") > /dev/null
mkdir "$T/pacs/odd"
for f in lateral hand no_date; do cp "$CXR_SOURCE_ROOT/tests/data/dicom/$f.dcm" "$T/pacs/odd/"; done
$PY - "$CXR_SOURCE_ROOT/tests/data/dicom/sr.dcm" "$T/pacs/1543" "$T/sr_in_study.dcm" << 'EOF'
import os, sys, pydicom
sr = pydicom.dcmread(sys.argv[1])
film = pydicom.dcmread(os.path.join(sys.argv[2], sorted(os.listdir(sys.argv[2]))[0]), stop_before_pixels=True)
sr.StudyInstanceUID, sr.PatientID = film.StudyInstanceUID, film.PatientID
sr.save_as(sys.argv[3])
EOF
orthanc_upload $(find "$T/pacs" -type f | sort) "$T/sr_in_study.dcm"
printf 'cxr:s3cret\n' > "$T/auth"

# --- pull -----------------------------------------------------------------
# no credentials: the server's refusal, named
if "$CXRTRACK" ingest --db "$T/no.sqlite" --dicomweb "$URL" > "$T/out" 2>&1; then
  fail "a pull without credentials succeeded"
fi
grep -q "GET $URL/studies?.*: HTTP 401" "$T/out" || { cat "$T/out"; fail "401 not reported"; }

"$CXRTRACK" ingest --db "$T/w.sqlite" --dicomweb "$URL" --auth-file "$T/auth" > "$T/out" \
  || { cat "$T/out"; fail "pull"; }
# 20 films + lateral (ok), undated (invalid); the hand (its body part in
# the PACS's index) and the SR not fetched
grep -q "dicomweb: 23 studies, 22 films fetched, 0 already stored (not fetched), 0 failed" "$T/out" \
  || { cat "$T/out"; fail "pull counts"; }
grep -q "ok 21, missing 0, invalid 1, unchanged 0, rejected rows 1, conflicts 0" "$T/out" \
  || { cat "$T/out"; fail "pull store counts"; }
grep -q "study 2.25.771844301374363121361171648138834046, instance .*: Body Part Examined 'HAND' (the PACS's index): not a chest film, not fetched" "$T/out" \
  || { cat "$T/out"; fail "hand not reported"; }
[ "$(find "$T/w.sqlite.dicomweb" -type f | wc -l)" = 22 ] || fail "cache holds other than the 22 films"
[ "$(stat -c %a "$T/w.sqlite.dicomweb")" = 700 ] || fail "cache readable by others"
# what the folder ingest stores from the same files, the same
"$CXRTRACK" ingest --db "$T/d.sqlite" --dicom "$T/pacs" > "$T/outd"
grep -q "ok 21, missing 0, invalid 1, unchanged 0, rejected rows 1, conflicts 0" "$T/outd" \
  || { cat "$T/outd"; fail "--dicom of the same films"; }
cols="image_index, patient_id, visit, study_date, view_kind, status, sha256, width, height, pixel_spacing_mm"
q "$T/w.sqlite" "SELECT $cols FROM scans ORDER BY image_index" > "$T/w.rows"
q "$T/d.sqlite" "SELECT $cols FROM scans ORDER BY image_index" > "$T/d.rows"
[ "$(wc -l < "$T/w.rows")" = 22 ] || fail "stored rows"
cmp -s "$T/w.rows" "$T/d.rows" || { diff "$T/d.rows" "$T/w.rows"; fail "pull and --dicom store differently"; }
"$CXRTRACK" sql --db "$T/w.sqlite" "SELECT * FROM scans" | grep -q "Test^Not^Stored" && fail "a name stored"

# a second pull (credentials from the environment): nothing fetched, nothing stored
CXRTRACK_DICOMWEB_AUTH=cxr:s3cret "$CXRTRACK" ingest --db "$T/w.sqlite" --dicomweb "$URL" > "$T/out2" \
  || { cat "$T/out2"; fail "second pull"; }
grep -q "dicomweb: 23 studies, 0 films fetched, 22 already stored (not fetched), 0 failed" "$T/out2" \
  || { cat "$T/out2"; fail "second pull fetched"; }
grep -q "ok 0, missing 0, invalid 0, unchanged 0, rejected rows 1" "$T/out2" || { cat "$T/out2"; fail "second pull stored"; }

# a pull killed after fetching, before storing: the next stores from the cache
cp -r "$T/w.sqlite.dicomweb" "$T/k.sqlite.dicomweb"
"$CXRTRACK" ingest --db "$T/k.sqlite" --dicomweb "$URL" --auth-file "$T/auth" > "$T/out3"
grep -q "dicomweb: 23 studies, 0 films fetched, 0 already stored" "$T/out3" || { cat "$T/out3"; fail "resume fetched"; }
grep -q "ok 21, missing 0, invalid 1" "$T/out3" || { cat "$T/out3"; fail "resume stored"; }

# a --since that is not a date: refused, naming it
if "$CXRTRACK" ingest --db "$T/s.sqlite" --dicomweb "$URL" --auth-file "$T/auth" --since 2019-13-45 > "$T/outs" 2>&1; then
  fail "--since 2019-13-45 accepted"
fi
grep -q "since '2019-13-45': not a date" "$T/outs" || { cat "$T/outs"; fail "--since not named"; }

# --patient and --since: only that patient's studies from that date
since=$(q "$T/w.sqlite" "SELECT study_date FROM scans WHERE patient_id = '1543' ORDER BY study_date LIMIT 1 OFFSET 2")
want=$(q "$T/w.sqlite" "SELECT count(*) FROM scans WHERE patient_id = '1543' AND study_date >= '$since'")
[ "$want" -gt 1 ] || fail "fixture: patient 1543 has too few films after $since"
"$CXRTRACK" ingest --db "$T/p.sqlite" --dicomweb "$URL" --auth-file "$T/auth" --patient 1543 --since "$since" > "$T/out4"
grep -q "dicomweb: $want studies, $want films fetched" "$T/out4" || { cat "$T/out4"; fail "--patient --since"; }
[ "$(q "$T/p.sqlite" "SELECT count(DISTINCT patient_id) || ' ' || min(study_date) FROM scans")" = "1 $since" ] \
  || fail "--patient --since stored others"

# --- push: each comparison back into its study --------------------------------
"$CXRTRACK" analyze --db "$T/w.sqlite" > "$T/analyze.out" 2>&1 || { cat "$T/analyze.out"; fail "analyze"; }
n_prior=$(q "$T/w.sqlite" "SELECT count(*) FROM registrations WHERE kind = 'previous'")
n_maps=$(q "$T/w.sqlite" "SELECT count(*) FROM pair_changes WHERE kind = 'previous' AND map_path IS NOT NULL")
[ "$n_prior" -ge 10 ] && [ "$n_maps" -ge 10 ] || fail "fixture: $n_prior comparisons, $n_maps maps"
"$CXRTRACK" push --db "$T/w.sqlite" --dicomweb "$URL" --auth-file "$T/auth" --all > "$T/push" \
  || { cat "$T/push"; fail "push"; }
grep -q "push: $n_prior films compared with a prior: $((n_prior + 2 * n_maps)) objects sent, 0 already in the PACS, 0 failed; 0 compared" "$T/push" \
  || { cat "$T/push"; fail "push counts ($n_prior comparisons, $n_maps maps)"; }
# what the PACS holds: each SR and SC once, in the study of the film it
# describes, valid, the SR's measurements referencing their films
$PY "$CXR_SOURCE_ROOT/tests/cli/check_pushed.py" "$ORTHANC" cxr:s3cret "$T" "$n_prior" "$n_maps" \
  || fail "the pushed objects"
# a second push sends nothing
"$CXRTRACK" push --db "$T/w.sqlite" --dicomweb "$URL" --auth-file "$T/auth" --all > "$T/push2"
grep -q "push: $n_prior films compared with a prior: 0 objects sent, $((n_prior + 2 * n_maps)) already in the PACS, 0 failed" "$T/push2" \
  || { cat "$T/push2"; fail "second push"; }
# pulling again fetches none of it: an SR or a secondary capture is not a film
"$CXRTRACK" ingest --db "$T/w.sqlite" --dicomweb "$URL" --auth-file "$T/auth" > "$T/out9"
grep -q "dicomweb: 23 studies, 0 films fetched, 22 already stored" "$T/out9" || { cat "$T/out9"; fail "pull after push"; }

# --- watch: a new film's comparison back in the PACS ---------------------------
# wait_for FILE PATTERN SECONDS
wait_for() {
  i=0
  while ! grep -q "$2" "$1"; do
    i=$((i + 1)); [ $i -le $(($3 * 10)) ] || return 1; sleep 0.1
  done
}
new=$($PY "$CXR_SOURCE_ROOT/tools/new_study_film.py" "$T/pacs/1543" "$T/new.dcm")
"$CXRTRACK" watch --db "$T/w.sqlite" --dicomweb "$URL" --auth-file "$T/auth" --interval 1 > "$T/watch" 2>&1 &
WPID=$!
# its first poll catches up: nothing new, nothing sent
wait_for "$T/watch" "push: $n_prior films compared with a prior, 0 objects sent" 120 \
  || { kill $WPID; cat "$T/watch"; fail "watch's first poll"; }
orthanc_upload "$T/new.dcm"
wait_for "$T/watch" "push: .* 3 objects sent" 120 || { kill $WPID; cat "$T/watch"; fail "watch did not push the new film's SR and SCs"; }
kill $WPID; wait $WPID 2> /dev/null || true
grep -q "24 studies (23 unchanged), 1 films fetched, 1 stored, 0 failed" "$T/watch" || { cat "$T/watch"; fail "watch's pull"; }
[ "$(q "$T/w.sqlite" "SELECT patient_id FROM scans WHERE image_index = '$new'")" = 1543 ] || fail "new film not stored"
$PY - "$ORTHANC" "$new" << 'EOF' || fail "no SR of the new film in the PACS"
import base64, io, json, sys, urllib.request
import pydicom
root, new = sys.argv[1], sys.argv[2]
auth = {"Authorization": "Basic " + base64.b64encode(b"cxr:s3cret").decode()}
get = lambda p, d=None: urllib.request.urlopen(urllib.request.Request(root + p, data=d, headers=auth)).read()
q = json.dumps({"Level": "Instance", "Query": {"Modality": "SR"}}).encode()
hits = [i for i in json.loads(get("/tools/find", q))
        if new in repr(pydicom.dcmread(io.BytesIO(get(f"/instances/{i}/file"))))]
assert len(hits) == 1, hits
EOF
# a watcher started again: nothing fetched, nothing sent
"$CXRTRACK" watch --db "$T/w.sqlite" --dicomweb "$URL" --auth-file "$T/auth" --polls 1 > "$T/watch2"
grep -q "24 studies (0 unchanged), 0 films fetched, 0 stored, 0 failed" "$T/watch2" \
  && grep -q "push: $((n_prior + 1)) films compared with a prior, 0 objects sent" "$T/watch2" \
  || { cat "$T/watch2"; fail "watch started again"; }
# the PACS gone: a line per poll, a backoff, exit 1 after --polls
if "$CXRTRACK" watch --db "$T/w.sqlite" --dicomweb "http://127.0.0.1:1/dicom-web" --polls 2 --interval 0.2 > "$T/watch3"; then
  fail "watch with the PACS gone exited 0"
fi
[ "$(grep -c "poll failed: GET http://127.0.0.1:1/dicom-web/studies?.*; next try in" "$T/watch3")" = 2 ] \
  || { cat "$T/watch3"; fail "watch's failures"; }

# --- a server that answers badly ---------------------------------------------
good=$(ls "$T/pacs/1543/"*.dcm | head -1)
$PY "$CXR_SOURCE_ROOT/tools/fake_dicomweb.py" "$good" "$T/fake.port" 2> "$T/fake.log" &
FPID=$!
for i in $(seq 100); do [ -f "$T/fake.port" ] && break; sleep 0.1; done
FURL="http://127.0.0.1:$(cat "$T/fake.port")/dicom-web"
"$CXRTRACK" ingest --db "$T/f.sqlite" --dicomweb "$FURL" --timeout 1 > "$T/out5" || { cat "$T/out5"; fail "bad server run"; }
grep -q "dicomweb: 7 studies, 1 films fetched, 0 already stored (not fetched), 7 failed" "$T/out5" \
  || { cat "$T/out5"; fail "bad server counts"; }
grep -q "ok 1, missing 0, invalid 0" "$T/out5" || { cat "$T/out5"; fail "good film of the bad server"; }
for why in "Study Instance UID is '../../etc', not a UID" \
           "77.2.1.1: HTTP 500: Internal Server Error" \
           "77.3.1.1: truncated multipart answer: no boundary closes the part" \
           "77.4.1.1: Content-Type 'text/html', not multipart/related" \
           "77.5.1.1: nothing received for 1 s (--timeout)" \
           "77.6.1.1: the answer is larger than the limit of 536870912 bytes" \
           "study 1.2.826.0.1.3680043.8.498.77.7: its instances cannot be listed: GET .*: HTTP 503"; do
  grep -q "$why" "$T/out5" || { cat "$T/out5"; fail "not reported: $why"; }
done
[ -z "$(find "$T/f.sqlite.dicomweb" -name '*.part' -o -name '*.tmp' -o -name etc)" ] || fail "partial files left"
[ "$(find "$T/f.sqlite.dicomweb" -type f | wc -l)" = 1 ] || fail "a failed film kept in the cache"
# --strict says so in the exit status
"$CXRTRACK" ingest --db "$T/f.sqlite" --dicomweb "$FURL" --timeout 1 --strict > "$T/out6" && fail "--strict exit 0"
# the bad server against the full store: nothing lost, the good film known
q "$T/w.sqlite" "SELECT $cols FROM scans ORDER BY image_index" > "$T/w.rows"
"$CXRTRACK" ingest --db "$T/w.sqlite" --dicomweb "$FURL" --timeout 1 > "$T/out7"
grep -q "dicomweb: 7 studies, 0 films fetched, 1 already stored (not fetched), 7 failed" "$T/out7" \
  || { cat "$T/out7"; fail "bad server, full store"; }
q "$T/w.sqlite" "SELECT $cols FROM scans ORDER BY image_index" > "$T/w.after"
cmp -s "$T/w.rows" "$T/w.after" || fail "the bad server's run changed the store"
# TLS is verified: a server whose certificate no trusted CA signed is
# refused, and trusted with --cacert
kill "$FPID"; wait "$FPID" 2> /dev/null || true
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -days 2 -keyout "$T/key.pem" -out "$T/cert.pem" 2> /dev/null
rm -f "$T/fake.port"
$PY "$CXR_SOURCE_ROOT/tools/fake_dicomweb.py" "$good" "$T/fake.port" "$T/cert.pem" "$T/key.pem" 2> "$T/fake.log" &
FPID=$!
for i in $(seq 100); do [ -f "$T/fake.port" ] && break; sleep 0.1; done
FURL="https://127.0.0.1:$(cat "$T/fake.port")/dicom-web"
if "$CXRTRACK" ingest --db "$T/tls.sqlite" --dicomweb "$FURL" --timeout 1 > "$T/out10" 2>&1; then
  fail "a server with an untrusted certificate was believed"
fi
grep -q "GET $FURL/studies?.*SSL certificate problem" "$T/out10" || { cat "$T/out10"; fail "TLS refusal not named"; }
"$CXRTRACK" ingest --db "$T/tls.sqlite" --dicomweb "$FURL" --timeout 1 --cacert "$T/cert.pem" > "$T/out11" \
  || { cat "$T/out11"; fail "--cacert"; }
grep -q "dicomweb: 7 studies, 1 films fetched" "$T/out11" || { cat "$T/out11"; fail "over TLS"; }
# the server unreachable: the run fails, naming it
kill "$FPID"; wait "$FPID" 2> /dev/null || true; FPID=""
if "$CXRTRACK" ingest --db "$T/w.sqlite" --dicomweb "$FURL" --timeout 1 > "$T/out8" 2>&1; then
  fail "a pull from a server that is gone succeeded"
fi
grep -q "GET $FURL/studies?.*Could not connect\|GET $FURL/studies?.*Couldn't connect\|GET $FURL/studies?.*[Cc]onnection refused" "$T/out8" \
  || { cat "$T/out8"; fail "unreachable server not named"; }
echo "dicomweb: ok"
