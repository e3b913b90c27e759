#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Films stored upside down, on real series: the series1024 cohort as it
is (every film upright: each one found upside down is a false alarm), and
the same cohort with one film of each patient turned half a turn (a later
film, so that it has an earlier one to be compared with): each turned film
found is a detection, each other film found a false alarm. Both analysed
with analyze's defaults; also the time analyze takes with and without the
check. The threshold (ORIENT_MARGIN in src/analyze/pipeline.c) was chosen on the
even-numbered pairs of the cohort; the turned films here are the last
film of each patient, odd and even alike.

--train256: the same on the patients the threshold never saw: the
train256 films (256 px) of every patient outside series1024 with two
frontal films or more there.

Usage: bench/orientation.py [build dir] [--train256]
"""
import csv, os, subprocess, sys, tempfile, time

import cv2

from nihsets import unseen_train256

TRAIN256 = "--train256" in sys.argv
argv = [a for a in sys.argv[1:] if a != "--train256"]
B = argv[0] if argv else "build"
X = os.path.join(B, "src", "cxrtrack")
D = "../shared/data/nih"
subprocess.run(["sh", "bench/machine.sh"])
T = tempfile.mkdtemp(prefix="cxr-orient-")
env = dict(os.environ, CXR_NO_PROGRESS="1")
man = os.path.join(T, "m.csv")
with open(man, "w") as f:
    subprocess.run(["python3", "tools/replicate_manifest.py", "--nih", D + "/Data_Entry_2017_v2020.csv.gz",
                    D + ("/train256" if TRAIN256 else "/series1024"), "0"], stdout=f, check=True)
rows = list(csv.DictReader(open(man)))
if TRAIN256:
    keep = set(unseen_train256(D))
    rows = [r for r in rows if r["image_index"] in keep]
    with open(man, "w", newline="") as f:
        w = csv.DictWriter(f, rows[0].keys())
        w.writeheader()
        w.writerows(rows)
last = {}
for r in rows:
    if r["view_position"] in ("PA", "AP") and (r["patient_id"] not in last or int(r["visit"]) > int(last[r["patient_id"]]["visit"])):
        last[r["patient_id"]] = r
turned = set()
os.makedirs(os.path.join(T, "turned"))
for pid, r in last.items():
    if sum(1 for q in rows if q["patient_id"] == pid and q["view_position"] == r["view_position"]) < 2:
        continue
    im = cv2.imread(r["path"], cv2.IMREAD_UNCHANGED)
    p = os.path.join(T, "turned", r["image_index"])
    cv2.imwrite(p, im[::-1, ::-1].copy())
    r["path"] = p
    turned.add(r["image_index"])
man2 = os.path.join(T, "m2.csv")
with open(man2, "w", newline="") as f:
    w = csv.DictWriter(f, rows[0].keys())
    w.writeheader()
    w.writerows(rows)


def run(name, manifest, *extra):
    db = os.path.join(T, name + ".sqlite")
    subprocess.run([X, "ingest", "--db", db, "--manifest", manifest], env=env, check=True, capture_output=True)
    t0 = time.time()
    out = subprocess.run([X, "analyze", "--db", db, *extra], env=env, check=True, capture_output=True, text=True).stdout
    dt = time.time() - t0
    q = subprocess.run([X, "sql", "--db", db, "--format", "csv",
                        "SELECT image_index FROM scans WHERE orientation = 'upside_down'"],
                       env=env, check=True, capture_output=True, text=True).stdout.split()[1:]
    reg = [l for l in out.splitlines() if "registrations" in l][0].strip()
    return set(q), dt, reg


found, dt, reg = run("asis", man)
print(f"as stored ({len(rows)} films of {'train256, other patients' if TRAIN256 else 'series1024'}, all upright): "
      f"{len(found)} found upside down (false alarms): {sorted(found)}")
print(f"  analyze {dt:.1f} s; {reg}")
_, dt0, reg0 = run("nocheck", man, "--no-orientation-check")
print(f"  without the check: analyze {dt0:.1f} s; {reg0}")
found, dt, reg = run("turned", man2)
print(f"one later film of each patient turned ({len(turned)} films): found {len(found & turned)} of {len(turned)}, "
      f"false alarms {len(found - turned)} {sorted(found - turned)}")
print(f"  missed: {sorted(turned - found)}")
print(f"  analyze {dt:.1f} s; {reg}")
