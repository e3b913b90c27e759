#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Difference maps on known change: lesions inserted into real films.

For each of N full-resolution NIH films (../shared/data/nih/series1024):
  FIXED  = the film;
  MOVING = the film re-posed (+-3 degrees, +-15 px, +-3 % scale) and
           re-exposed (gain 0.9-1.1, gamma 0.9-1.1, noise sigma 0.004),
           without a lesion (an unchanged pair) or with one lesion inserted
           first at a random point of the lung fields.
Lesions: 'nodule' = a sphere's projected thickness, contrast * sqrt(1 - r^2/R^2);
'opacity' = a Gaussian of sigma R/2 (a soft, ill-defined one). Contrast is
the added intensity at the centre on the 0..1 scale of the 8-bit film. 0.06
(15 grey levels) is used as a typical 10 mm solid nodule: 1 cm of water
attenuates a chest-energy beam by about 18 %, which the NIH films' display
curve (slope ~0.3 in the lungs) turns into ~0.05-0.07.

Reports the AUC of change_score separating lesion pairs from unchanged
pairs, per lesion kind, diameter and contrast; how often the peak falls on
the lesion (within max(R, 5 mm)); the change energy of unchanged pairs; and
the time per pair (registration + maps, one thread).
Usage: bench/diff_lesions.py [N films, default 30] [build dir]
"""
import csv, gzip, math, os, random, subprocess, sys, tempfile

import cv2
import numpy as np

from synth import repose

N = int(sys.argv[1]) if len(sys.argv) > 1 else 30
B = sys.argv[2] if len(sys.argv) > 2 else "build"
D = "../shared/data/nih"
subprocess.run(["sh", "bench/machine.sh"])
meta = {r["Image Index"]: r for r in csv.DictReader(gzip.open(f"{D}/Data_Entry_2017_v2020.csv.gz", "rt"))}
rng = random.Random(11)
films = sorted(os.listdir(f"{D}/series1024"))
rng.shuffle(films)
films = films[:N]
tmp = tempfile.mkdtemp()
SIZES, CONTRASTS, KINDS = [5, 10, 15, 20], [0.02, 0.04, 0.06, 0.10], ["nodule", "opacity"]


def spacing(name):
    r = meta[name]
    return float(r["OriginalImagePixelSpacing[x"]) * float(r["OriginalImage[Width"]) / 1024


lines, truth = [], []
for fi, name in enumerate(films):
    img = cv2.imread(f"{D}/series1024/{name}", 0).astype(np.float32) / 255
    sp = spacing(name)
    h, w = img.shape
    seed = 1000 + fi
    p = os.path.join(tmp, f"{fi}_clean.png")
    cv2.imwrite(p, (repose(img, seed) * 255 + 0.5).astype(np.uint8))
    lines.append(f"{D}/series1024/{name} {p} {sp}")
    truth.append((fi, None, None, None, None, None))
    yy, xx = np.mgrid[0:h, 0:w]
    for kind in KINDS:
        for d in SIZES:
            for c in CONTRASTS:
                R = d / 2 / sp
                side = rng.choice([0.28, 0.72])
                cx, cy = rng.uniform(side - 0.07, side + 0.07) * w, rng.uniform(0.3, 0.62) * h
                r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / R ** 2
                blob = c * np.sqrt(np.clip(1 - r2, 0, 1)) if kind == "nodule" else c * np.exp(-r2 * 2)
                p = os.path.join(tmp, f"{fi}_{kind}_{d}_{c}.png")
                cv2.imwrite(p, (repose(np.clip(img + blob, 0, 1), seed) * 255 + 0.5).astype(np.uint8))
                lines.append(f"{D}/series1024/{name} {p} {sp}")
                truth.append((fi, kind, d, c, (cx, cy), max(R, 5 / sp)))
lst = os.path.join(tmp, "list.txt")
open(lst, "w").write("\n".join(lines))
maps = os.path.join(tmp, "maps")  # overlay PNG and signed map per pair, as analyze writes them
os.mkdir(maps)
out = subprocess.run([f"{B}/bench/bench_diff", lst, maps], capture_output=True, text=True, check=True)
res = [l.split() for l in out.stdout.strip().splitlines()]


def auc(pos, neg):
    pos, neg = np.asarray(pos), np.asarray(neg)
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
                 / (len(pos) * len(neg)))


val = lambda x: float("nan") if x == "nan" else float(x)
clean = [val(r[3]) for t, r in zip(truth, res) if t[1] is None and r[3] != "nan"]
energy = [val(r[4]) for t, r in zip(truth, res) if t[1] is None and r[3] != "nan"]
failed = sum(1 for r in res if r[2] == "failed")
print(f"\n{N} films; {len(res)} pairs; registrations failed: {failed}")
print(f"unchanged re-posed pairs: change_score median {np.median(clean):.1f} (max {max(clean):.1f}); "
      f"change_energy median {np.median(energy):.3f}")
for kind in KINDS:
    print(f"\n{kind}: AUC of change_score, lesion vs unchanged pairs (and peak on the lesion)")
    print("| diameter \\ contrast | " + " | ".join(f"{c:.2f}" for c in CONTRASTS) + " |")
    print("|---|" + "---|" * len(CONTRASTS))
    for d in SIZES:
        cells = []
        for c in CONTRASTS:
            sel = [(t, r) for t, r in zip(truth, res) if t[1] == kind and t[2] == d and t[3] == c]
            pos = [val(r[3]) if r[3] != "nan" else -1 for t, r in sel]
            hits = [math.hypot(val(r[6]) - t[4][0], val(r[7]) - t[4][1]) <= t[5] for t, r in sel if r[3] != "nan"]
            cells.append(f"{auc(pos, clean):.2f} ({100 * np.mean(hits):.0f}%)")
        print(f"| {d} mm | " + " | ".join(cells) + " |")
rt = [val(r[0]) for r in res]
dt = [val(r[1]) for r in res if r[1] != "nan"]
print(f"\ntime per pair, one thread: registration {np.median(rt):.0f} ms; maps and measures, with the overlay PNG"
      f" and the signed map written, {np.median(dt):.1f} ms (median; 95th percentile {np.percentile(dt, 95):.1f} ms)")
