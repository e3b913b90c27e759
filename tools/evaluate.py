#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Figures for models/MODEL_CARD.md, measured with cxrtrack's C runtime.

  /usr/bin/python3 tools/evaluate.py [model] [build dir]

1. Parity: `cxrtrack predict` on every held-out film against the PyTorch
   probabilities tools/train.py saved (models/heldout_torch.csv).
2. Per-finding AUROC on the held-out patients with 95 % bootstrap intervals
   (2,000 resamples of films, percentile method), and, on exactly the
   held-out films that chexnet_reference_preds.csv covers, the AUROC of the
   CheXNet reference next to ours.
3. Embedding stability: cosine distance between a full-resolution film
   (series1024) and re-posed copies of it (+-5 degrees, +-20 px, +-5 %
   scale, +-10 % exposure) against the distance between films of different
   patients; the ratio of medians.
"""
import csv, math, os, random, subprocess, sys, tempfile

import cv2
import numpy as np

MODEL = sys.argv[1] if len(sys.argv) > 1 else "models/cxr-default.safetensors"
B = sys.argv[2] if len(sys.argv) > 2 else "build"
X = f"{B}/src/cxrtrack"
D = "../shared/data/nih"
rows = {r["Image Index"]: r for r in csv.DictReader(open(f"{D}/images.csv"))}
torch_rows = list(csv.DictReader(open("models/heldout_torch.csv")))
CLASSES = [k[5:] for k in torch_rows[0] if k.startswith("prob_")]


def predict(files, embedding=False):
    out = {}
    for i in range(0, len(files), 200):
        args = [X, "predict", "--model", MODEL] + (["--embedding"] if embedding else []) + files[i:i + 200]
        r = subprocess.run(args, capture_output=True, text=True, check=True)
        lines = r.stdout.strip().splitlines()
        for l in lines[1:]:
            f = l.split(",")
            out[f[0]] = np.array([float(v) for v in f[1:]])
    return out


def auroc(y, s):
    y = np.asarray(y, bool)
    npos, nneg = y.sum(), (~y).sum()
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ss = np.asarray(s)[order]
    i = 0
    while i < len(ss):  # average ranks over ties
        j = i
        while j + 1 < len(ss) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return (ranks[y].sum() - npos * (npos + 1) / 2) / (npos * nneg)


def boot(y, s, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    y, s = np.asarray(y), np.asarray(s)
    v = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        a = auroc(y[idx], s[idx])
        if not math.isnan(a):
            v.append(a)
    return np.percentile(v, 2.5), np.percentile(v, 97.5)


files = [f"{D}/train256/{r['Image Index']}" for r in torch_rows]
cpred = predict(files)
tp = np.array([[float(r["prob_" + c]) for c in CLASSES] for r in torch_rows])
cp = np.array([cpred[f][:len(CLASSES)] for f in files])
print(f"## Parity\n\nC runtime vs PyTorch on {len(files)} held-out films: max |difference| of "
      f"probabilities {np.abs(tp - cp).max():.2e} (target 1e-4)\n")

labels = np.array([[c in rows[r["Image Index"]]["Finding Labels"].split("|") for c in CLASSES] for r in torch_rows])
ref = {r["Image Index"]: r for r in csv.DictReader(open(f"{D}/chexnet_reference_preds.csv"))}
sub = [i for i, r in enumerate(torch_rows) if r["Image Index"] in ref]
refp = np.array([[float(ref[torch_rows[i]["Image Index"]]["prob_" + c]) for c in CLASSES] for i in sub])
print(f"## AUROC on held-out patients\n\n{len(files)} films of {len({r['Patient ID'] for r in torch_rows})} patients; "
      f"{len(sub)} of them have CheXNet reference probabilities.\n")
print("| finding | positives | AUROC (95 % CI), all held-out films | AUROC, CheXNet-covered films | CheXNet reference, same films |")
print("|---|---|---|---|---|")
mine, mine_sub, theirs = [], [], []
for k, c in enumerate(CLASSES):
    a = auroc(labels[:, k], cp[:, k])
    lo, hi = boot(labels[:, k], cp[:, k]) if not math.isnan(a) else (float("nan"),) * 2
    a2 = auroc(labels[sub, k], cp[sub, k])
    r2 = auroc(labels[sub, k], refp[:, k])
    mine.append(a); mine_sub.append(a2); theirs.append(r2)
    fmt = lambda v: "n/a" if math.isnan(v) else f"{v:.3f}"
    print(f"| {c} | {int(labels[:, k].sum())} | {fmt(a)} ({fmt(lo)}–{fmt(hi)}) | {fmt(a2)} | {fmt(r2)} |")
nm = lambda v: np.nanmean(v)
print(f"| **mean** | | **{nm(mine):.3f}** | **{nm(mine_sub):.3f}** | **{nm(theirs):.3f}** |\n")

# Embedding stability on full-resolution films.
rng = random.Random(3)
films = sorted(os.listdir(f"{D}/series1024"))
rng.shuffle(films)
films = films[:40]
tmp = tempfile.mkdtemp()
orig, copies = [], {}
for f in films:
    img = cv2.imread(f"{D}/series1024/{f}", 0).astype(np.float32) / 255
    h, w = img.shape
    orig.append(f"{D}/series1024/{f}")
    for k in range(3):
        ang, sc = rng.uniform(-5, 5), rng.uniform(0.95, 1.05)
        M = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), ang, sc)
        M[:, 2] += (rng.uniform(-20, 20), rng.uniform(-20, 20))
        out = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
        out = np.clip(out * rng.uniform(0.9, 1.1), 0, 1)
        p = os.path.join(tmp, f"{f[:-4]}_{k}.png")
        cv2.imwrite(p, (out * 255 + 0.5).astype(np.uint8))
        copies.setdefault(orig[-1], []).append(p)
emb = predict(orig + [p for v in copies.values() for p in v], embedding=True)
E = {f: v[len(CLASSES):] for f, v in emb.items()}
cos = lambda a, b: 1 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
same = [cos(E[o], E[c]) for o in orig for c in copies[o]]
pid = lambda f: os.path.basename(f)[:8]
diff = [cos(E[a], E[b]) for i, a in enumerate(orig) for b in orig[i + 1:] if pid(a) != pid(b)]
print("## Embedding stability\n")
print(f"{len(same)} re-posed copies of {len(orig)} full-resolution films; {len(diff)} pairs of films of different patients.\n")
print(f"| cosine distance | median | 95th percentile |\n|---|---|---|")
print(f"| film vs its re-posed copy | {np.median(same):.4f} | {np.percentile(same, 95):.4f} |")
print(f"| films of different patients | {np.median(diff):.4f} | {np.percentile(diff, 95):.4f} |")
print(f"\nratio of medians: different patients are {np.median(diff) / np.median(same):.1f}x farther apart "
      f"than re-posed copies (target >= 5x)")
