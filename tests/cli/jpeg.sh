#!/bin/sh
# SPDX-License-Identifier: MIT
# JPEG films through the whole tool: the sample's patient 1543 written as
# JPEG (quality 95, two of them stored turned with an EXIF orientation, one
# truncated) is ingested from a folder and a manifest, the truncated film
# is stored 'invalid' with the reason and nothing else is lost, and its
# registrations agree with the PNGs' to a pixel.
set -eu
: "${CXRTRACK:?}" "${CXR_SOURCE_ROOT:?}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
S="$CXR_SOURCE_ROOT/sample"
mkdir "$T/img"
/usr/bin/python3 - "$S" "$T" <<'PY'
import csv, io, sys
from PIL import Image
S, T = sys.argv[1], sys.argv[2]
rows = [r for r in csv.DictReader(open(f"{S}/manifest.csv")) if r["patient_id"] == "1543"]
out = []
for i, r in enumerate(rows):
    im = Image.open(f"{S}/{r['path']}").convert("L")
    name = r["path"].split("/")[-1].replace(".png", ".jpg")
    exif = Image.Exif()
    if i == 1:  # stored turned anticlockwise, to be turned clockwise to view
        im, o = im.rotate(90, expand=True), 6
    elif i == 2:
        im, o = im.rotate(180), 3
    else:
        o = 1
    exif[0x0112] = o
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    data = buf.getvalue()
    if i == len(rows) - 1:
        data = data[: len(data) // 2]
    open(f"{T}/img/{name}", "wb").write(data)
    r = dict(r, path=f"img/{name}")
    out.append(r)
w = csv.DictWriter(open(f"{T}/m.csv", "w", newline=""), fieldnames=list(out[0]))
w.writeheader()
w.writerows(out)
PY
q() { "$CXRTRACK" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -n +2; }
"$CXRTRACK" ingest --db "$T/j.sqlite" --manifest "$T/m.csv" > "$T/out" || { cat "$T/out"; fail "ingest"; }
n=$(q "$T/j.sqlite" "SELECT count(*) FROM scans")
[ "$n" = 8 ] || fail "8 films expected, got $n"
[ "$(q "$T/j.sqlite" "SELECT count(*) FROM scans WHERE status = 'ok' AND width = 1024 AND height = 1024")" = 7 ] \
  || { q "$T/j.sqlite" "SELECT image_index, status, width, height, error FROM scans"; fail "jpeg films"; }
q "$T/j.sqlite" "SELECT error FROM scans WHERE status = 'invalid'" | grep -q "00001543_007.jpg" \
  || fail "truncated film not named: $(q "$T/j.sqlite" "SELECT error FROM scans WHERE status <> 'ok'")"
# the same films as PNG, and the registrations of both
grep -E '^(patient_id|1543),' "$S/manifest.csv" > "$T/p.csv"
"$CXRTRACK" ingest --db "$T/p.sqlite" --manifest "$T/p.csv" --images "$S" > /dev/null
"$CXRTRACK" analyze --db "$T/j.sqlite" --no-model --no-diff --no-lungs > /dev/null
"$CXRTRACK" analyze --db "$T/p.sqlite" --no-model --no-diff --no-lungs > /dev/null
R="SELECT f.visit || '>' || m.visit || ' ' || r.kind, r.dx_px, r.dy_px, r.angle_deg FROM registrations r
     JOIN scans f ON f.scan_id = r.fixed_scan_id JOIN scans m ON m.scan_id = r.moving_scan_id
    WHERE m.visit < 7 ORDER BY 1"
q "$T/j.sqlite" "$R" > "$T/rj"
q "$T/p.sqlite" "$R" > "$T/rp"
[ "$(wc -l < "$T/rj")" = 12 ] || { cat "$T/rj"; fail "registrations of the JPEG films"; }
/usr/bin/python3 - "$T/rj" "$T/rp" <<'PY' || fail "JPEG and PNG registrations differ"
import csv, sys
a = list(csv.reader(open(sys.argv[1])))
b = list(csv.reader(open(sys.argv[2])))
assert [r[0] for r in a] == [r[0] for r in b], (a, b)
for x, y in zip(a, b):
    d = ((float(x[1]) - float(y[1])) ** 2 + (float(x[2]) - float(y[2])) ** 2) ** 0.5
    assert d < 1.0 and abs(float(x[3]) - float(y[3])) < 0.1, (x, y)
PY
echo "jpeg: ok"
