#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Heart size from the lung fields (src/nn/lungs-heart.c) against the NIH
Cardiomegaly label: the cardiothoracic ratio `cxrtrack lungs` reports for
every film of NIH train256 and of series1024, its AUROC for the label
(ties half), and how often the radiologists' cut, > 0.5 on PA films,
agrees with it.

The ratio's row window and width cut were chosen on the even-numbered
patients of train256; the odd-numbered ones, and series1024 (other
patients, 1024-px films), are the figures to trust. The label is
text-mined from the reports (Wang et al. 2017): a weak reference, used
here because the set has no heart measurements; it only says whether the
ratio tracks what radiologists called an enlarged heart.

Usage: bench/heart_size.py [build dir]
"""
import csv, gzip, json, os, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

B = sys.argv[1] if len(sys.argv) > 1 else "build"
X = os.path.join(B, "src", "cxrtrack")
D = "../shared/data/nih"
subprocess.run(["sh", "bench/machine.sh"])

meta = {}
with gzip.open(D + "/Data_Entry_2017_v2020.csv.gz", "rt") as f:
    for r in csv.DictReader(f):
        meta[r["Image Index"]] = ("Cardiomegaly" in r["Finding Labels"], r["View Position"],
                                  int(r["Patient ID"]))


def ratio(path):
    out = subprocess.run([X, "lungs", path, "--format", "json"], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)["cardiothoracic_ratio"]


def measure(folder):
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png") and n in meta)
    with ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        vals = list(ex.map(lambda n: ratio(os.path.join(folder, n)), names))
    return {n: v for n, v in zip(names, vals)}, len(names)


def auroc(pos, neg):
    if not pos or not neg:
        return float("nan")
    s = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return s / (len(pos) * len(neg))


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else float("nan")


def report(name, vals, n_films, keep=lambda k: True):
    ks = [k for k in vals if keep(k)]
    have = [k for k in ks if vals[k] is not None]
    pos = [vals[k] for k in have if meta[k][0]]
    neg = [vals[k] for k in have if not meta[k][0]]
    print(f"{name}: {len(have)} of {len(ks)} films measured; Cardiomegaly {len(pos)}, other {len(neg)}")
    print(f"  AUROC {auroc(pos, neg):.3f}; median ratio {median(pos):.3f} (Cardiomegaly) vs {median(neg):.3f}")
    pa = [k for k in have if meta[k][1] == "PA"]
    tp = sum(1 for k in pa if meta[k][0] and vals[k] > 0.5)
    fn = sum(1 for k in pa if meta[k][0] and vals[k] <= 0.5)
    tn = sum(1 for k in pa if not meta[k][0] and vals[k] <= 0.5)
    fp = sum(1 for k in pa if not meta[k][0] and vals[k] > 0.5)
    if tp + fn and tn + fp:
        print(f"  PA films, ratio > 0.5: sensitivity {tp / (tp + fn):.2f} ({tp}/{tp + fn}),"
              f" specificity {tn / (tn + fp):.2f} ({tn}/{tn + fp})")


t256, n = measure(D + "/train256")
report("train256, even patients (chosen on)", t256, n, lambda k: meta[k][2] % 2 == 0)
report("train256, odd patients (held out)", t256, n, lambda k: meta[k][2] % 2 == 1)
s1024, n = measure(D + "/series1024")
report("series1024 (held out, 1024 px)", s1024, n)

# beside the classifier's Cardiomegaly probability on the films it never
# trained on (models/heldout_torch.csv: tools/train.py's held-out patients)
held = {r["Image Index"]: float(r["prob_Cardiomegaly"])
        for r in csv.DictReader(open("models/heldout_torch.csv"))}
both = [k for k in held if k in t256 and t256[k] is not None]
for name, v in (("cardiothoracic ratio", t256), ("classifier's Cardiomegaly probability", held)):
    pos = [v[k] for k in both if meta[k][0]]
    neg = [v[k] for k in both if not meta[k][0]]
    print(f"classifier's held-out films ({len(both)}, Cardiomegaly {len(pos)}): {name} AUROC {auroc(pos, neg):.3f}")
