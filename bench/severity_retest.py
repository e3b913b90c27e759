#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""How much the Brixia zone scores move on re-posed copies of one film.

Films: the first film of each series1024 patient (46) and the scored
BrixIA development films (141). Each is re-posed and re-exposed three
times (bench/synth.py's repose: +-3 degrees, +-15 px per 1024, +-3 %
scale, gain and gamma +-10 %, noise), and every copy is scored with
`cxrtrack severity` beside the film itself. Printed: the absolute change
of each zone and of the global between a copy and its film (median, 95th
and 99th percentile, largest, how many zones moved by more than 1), the
noise the flags' test-retest limits stand for (docs/severity.md).

Usage: bench/severity_retest.py [--build DIR] [--head SAFETENSORS]
"""
import argparse, csv, glob, json, os, shutil, subprocess, tempfile

import cv2
import numpy as np

from synth import repose

ap = argparse.ArgumentParser()
ap.add_argument("--build", default="build")
ap.add_argument("--head", default=None, help="zone-score head (default: the shipped one)")
args = ap.parse_args()

DATA = "../shared/data"
subprocess.run(["sh", "bench/machine.sh"])
films, seen = [], set()
for f in sorted(glob.glob(f"{DATA}/nih/series1024/*.png")):
    p = os.path.basename(f).split("_")[0]
    if p not in seen:
        seen.add(p)
        films.append(f)
for r in csv.DictReader(open(f"{DATA}/brixia/scores.csv", newline="")):
    f = f"{DATA}/brixia/images/{r['filename']}"
    if os.path.exists(f) and not r["duplicate_of"]:
        films.append(f)

tmp = tempfile.mkdtemp(prefix="cxr-sevretest-")
paths = []
for k, f in enumerate(films):
    im = cv2.imread(f, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    cv2.imwrite(f"{tmp}/{k:03d}_o.png", (im * 255).round().astype(np.uint8))
    paths.append(f"{tmp}/{k:03d}_o.png")
    for c in range(3):
        out = repose(im, 1000 * k + c, shift=15 * max(im.shape) / 1024)
        cv2.imwrite(f"{tmp}/{k:03d}_{c}.png", (out * 255).round().astype(np.uint8))
        paths.append(f"{tmp}/{k:03d}_{c}.png")

cmd = [f"{args.build}/src/cxrtrack", "severity", "--format", "json"]
if args.head:
    cmd += ["--severity-model", args.head]
score = {}
for i in range(0, len(paths), 64):
    out = subprocess.run(cmd + paths[i:i + 64], capture_output=True, text=True).stdout
    for line in out.splitlines():
        d = json.loads(line)
        if d["zones"]["A"] is not None:
            score[os.path.basename(d["file"])] = np.array([d["zones"][z] for z in "ABCDEF"] + [d["global"]])

dz, dg = [], []
for k in range(len(films)):
    o = score.get(f"{k:03d}_o.png")
    if o is None:
        continue
    for c in range(3):
        s = score.get(f"{k:03d}_{c}.png")
        if s is not None:
            d = np.abs(s - o)
            dz += list(d[:6])
            dg.append(d[6])
shutil.rmtree(tmp)
dz, dg = np.array(dz), np.array(dg)
print(f"{len(films)} films ({len(films) - len(seen)} BrixIA, {len(seen)} series1024 first films), 3 copies each")
print(f"zone |change|: median {np.median(dz):.3f}, p95 {np.percentile(dz, 95):.3f}, "
      f"p99 {np.percentile(dz, 99):.3f}, largest {dz.max():.2f}; over 1.0: {(dz > 1).sum()} of {len(dz)}")
print(f"global |change|: median {np.median(dg):.2f}, p95 {np.percentile(dg, 95):.2f}, "
      f"p99 {np.percentile(dg, 99):.2f}, largest {dg.max():.2f}")
