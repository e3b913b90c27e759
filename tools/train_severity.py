#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fit cxrtrack's zone-score head (models/cxr-severity.safetensors).

The features of each Brixia zone come from cxrtrack itself
(`cxrtrack severity --features`, src/severity/severity.c), so the head is fitted on
exactly what the C code computes. The head is ridge regression of the zone
score (the mean of the senior and junior readers' 0-3) on standardised
features, with an unpenalised bias per zone. The ridge strength and the
feature set are chosen by cross-validation with patients grouped (no
patient's films on both sides of a fold), and the figures printed are the
out-of-fold ones: each film scored by a head that never saw its patient.

  /usr/bin/python3 tools/train_severity.py            # CV figures, writes the head
  /usr/bin/python3 tools/train_severity.py --dry-run  # CV figures only

Data: ../shared/data/brixia (scores CC BY-NC-SA 4.0; models/SEVERITY_CARD.md).
Needs python3-numpy and python3-scipy.
"""
import argparse
import csv
import hashlib
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
from scipy.stats import spearmanr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZONES = "ABCDEF"
N_OWN = 9
# one man under three Cohen ids (DATA.md, "Known problems")
SAME_PATIENT = {"192": "186", "196": "186"}
FEATURE_SETS = ("own", "own+cam", "own+cam+film", "all")
ALPHAS = (0.3, 1, 3, 10, 30, 100, 300, 1000)


def load_rows(data):
    """Scored films with an image, one row per film (repeat reads dropped)."""
    rows = []
    with open(os.path.join(data, "scores.csv"), newline="") as f:
        for r in csv.DictReader(f):
            path = os.path.join(data, "images", r["filename"])
            if r["duplicate_of"] or not os.path.exists(path):
                continue
            pid = r["patientid"] or "x-" + r["filename"]
            r["group"] = SAME_PATIENT.get(pid, pid)
            r["path"] = path
            r["S"] = np.array([float(r["S-" + z]) for z in ZONES])
            r["J"] = np.array([float(r["J-" + z]) for z in ZONES])
            rows.append(r)
    return rows


def cxrtrack_features(paths, exe, model=None):
    """{path: (6 x n_features array, status, zone_method)} from cxrtrack."""
    cmd = [exe, "severity", "--features"]
    if model:
        cmd += ["--model", model]
    out = {}
    for i in range(0, len(paths), 64):
        p = subprocess.run(cmd + paths[i:i + 64], capture_output=True, text=True)
        if p.stderr:
            sys.stderr.write(p.stderr)
        for line in p.stdout.splitlines():
            d = json.loads(line)
            out[d["file"]] = (np.array(d["features"], dtype=np.float64), d["status"],
                              d["zone_method"])
    return out


def dataset(data, exe, model=None):
    """The scored films with cxrtrack's features: rows, features (a 6 x nf
    array per film), senior and junior scores (n x 6), the target (their
    mean) and each film's patient group."""
    rows = load_rows(data)
    feats = cxrtrack_features([r["path"] for r in rows], exe, model)
    rows = [r for r in rows if r["path"] in feats]
    for r in rows:
        r["zone_method"] = feats[r["path"]][2]
    F = [feats[r["path"]][0] for r in rows]
    S = np.array([r["S"] for r in rows])
    J = np.array([r["J"] for r in rows])
    return rows, F, S, J, (S + J) / 2, [r["group"] for r in rows]


def columns(n_features, n_classes, which):
    """Feature indices of a set (layout: src/severity/severity.c's head)."""
    ctx = n_features - N_OWN - n_classes
    if which == "own":
        return np.arange(N_OWN)
    if which == "own+cam":
        return np.arange(N_OWN + n_classes)
    if which == "own+cam+film":
        return np.r_[np.arange(N_OWN + n_classes), np.arange(ctx, n_features)]
    return np.arange(n_features)


class Ridge:
    """Zone score = bias[zone] + w . (x - mean) / scale, fitted on zones."""

    def fit(self, X, zone, y, alpha, cols):
        self.cols = cols
        Xc = X[:, cols]
        self.mean = Xc.mean(0)
        self.scale = Xc.std(0)
        self.scale[self.scale < 1e-6] = 1.0
        Z = (Xc - self.mean) / self.scale
        # centre per zone so the zone biases carry the zone means unpenalised
        zm = np.zeros((6, Z.shape[1]))
        ym = np.zeros(6)
        for z in range(6):
            zm[z] = Z[zone == z].mean(0)
            ym[z] = y[zone == z].mean()
        Zc = Z - zm[zone]
        yc = y - ym[zone]
        A = Zc.T @ Zc + alpha * np.eye(Z.shape[1])
        self.w = np.linalg.solve(A, Zc.T @ yc)
        self.bias = ym - zm @ self.w
        return self

    def predict(self, X, zone):
        Z = (X[:, self.cols] - self.mean) / self.scale
        return np.clip(Z @ self.w + self.bias[zone], 0, 3)

    def export(self, n_features):
        """The full-length vectors the C head reads (unused features: weight 0)."""
        mean = np.zeros(n_features)
        scale = np.ones(n_features)
        w = np.zeros(n_features)
        mean[self.cols] = self.mean
        scale[self.cols] = self.scale
        w[self.cols] = self.w
        return mean, scale, w, self.bias


def folds(groups, k, seed):
    g = sorted(set(groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(g)
    fold_of = {x: i % k for i, x in enumerate(g)}
    return np.array([fold_of[x] for x in groups])


def zone_arrays(F, films):
    """Stack films' zones: X (6n x nf), zone index, film index."""
    X = np.concatenate([F[i] for i in films])
    zone = np.tile(np.arange(6), len(films))
    film = np.repeat(np.arange(len(films)), 6)
    return X, zone, film


def oof_predict(F, Y, groups, which, n_classes, k=5, seed=0, alpha=None):
    """Out-of-fold zone scores (n x 6); alpha chosen inside each outer fold
    by an inner grouped CV unless given."""
    n = len(F)
    fo = folds(groups, k, seed)
    P = np.zeros((n, 6))
    chosen = []
    for f in range(k):
        tr = np.where(fo != f)[0]
        te = np.where(fo == f)[0]
        a = alpha if alpha is not None else choose_alpha(
            [F[i] for i in tr], Y[tr], [groups[i] for i in tr], which, n_classes, seed + 1)
        chosen.append(a)
        X, zone, _ = zone_arrays(F, tr)
        cols = columns(X.shape[1], n_classes, which)
        m = Ridge().fit(X, zone, Y[tr].reshape(-1), a, cols)
        Xt, zt, _ = zone_arrays(F, te)
        P[te] = m.predict(Xt, zt).reshape(-1, 6)
    return P, chosen


def choose_alpha(F, Y, groups, which, n_classes, seed):
    best = None
    for a in ALPHAS:
        P, _ = oof_predict(F, Y, groups, which, n_classes, k=4, seed=seed, alpha=a)
        err = np.abs(P - Y).mean()
        if best is None or err < best[0]:
            best = (err, a)
    return best[1]


def figures(P, S, J):
    """Per-film figures of scores P (n x 6) against the senior S and junior J."""
    return {
        "spearman_global_S": spearmanr(P.sum(1), S.sum(1)).correlation,
        "spearman_global_J": spearmanr(P.sum(1), J.sum(1)).correlation,
        "mad_zone_S": np.abs(P - S).mean(),
        "exact_zone_S": (np.rint(P) == S).mean(),
        "mad_global_S": np.abs(P.sum(1) - S.sum(1)).mean(),
    }


def write_head(path, model, n_features, meta):
    mean, scale, w, bias = model.export(n_features)
    tensors = [("feature_mean", mean), ("feature_scale", scale), ("weight", w),
               ("zone_bias", bias)]
    header = {"__metadata__": {k: str(v) for k, v in meta.items()}}
    blobs = []
    off = 0
    for name, v in tensors:
        b = np.asarray(v, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": [len(v)], "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "brixia"))
    ap.add_argument("--cxrtrack", default=os.path.join(ROOT, "build", "src", "cxrtrack"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "cxr-default.safetensors"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "cxr-severity.safetensors"))
    ap.add_argument("--features", choices=FEATURE_SETS, help="skip choosing the feature set")
    ap.add_argument("--dry-run", action="store_true", help="print the CV figures only")
    args = ap.parse_args()
    t0 = time.time()
    rows, F, S, J, Y, groups = dataset(args.data, args.cxrtrack, args.model)
    nf = F[0].shape[1]
    n_classes = 14
    print(f"{len(rows)} films of {len(set(groups))} patients; {nf} features per zone")
    ceiling = figures(J, S, J)
    print("junior reader vs senior (the ceiling): Spearman global %.3f, zone MAD %.3f, exact %.3f"
          % (ceiling["spearman_global_S"], ceiling["mad_zone_S"], ceiling["exact_zone_S"]))
    best = None
    for which in ([args.features] if args.features else FEATURE_SETS):
        P, chosen = oof_predict(F, Y, groups, which, n_classes)
        r = figures(P, S, J)
        print(f"features {which:8s} grouped 5-fold out-of-fold: Spearman global vs senior "
              f"{r['spearman_global_S']:.3f} (junior {r['spearman_global_J']:.3f}), zone MAD "
              f"{r['mad_zone_S']:.3f}, exact {r['exact_zone_S']:.3f}, global MAD "
              f"{r['mad_global_S']:.2f}; alphas {chosen}")
        if best is None or r["mad_zone_S"] < best[0]:
            best = (r["mad_zone_S"], which)
    which = best[1]
    alpha = choose_alpha(F, Y, groups, which, n_classes, 7)
    print(f"chosen: features {which}, alpha {alpha} (grouped CV on all films)")
    if args.dry_run:
        return
    X, zone, _ = zone_arrays(F, np.arange(len(F)))
    m = Ridge().fit(X, zone, Y.reshape(-1), alpha, columns(nf, n_classes, which))
    meta = {
        "architecture": "cxr-brixia-ridge",
        "name": "cxr-severity",
        "feature_set": "brixia-v1",
        "n_features": nf,
        "features_used": which,
        "alpha": alpha,
        "classifier_sha256": sha256_of(args.model),
        "training_films": len(rows),
        "training_patients": len(set(groups)),
        "target": "mean of the senior and junior readers' Brixia zone scores",
        "data": "BrixIA public annotations (CC BY-NC-SA 4.0), development half",
        "training_seconds": round(time.time() - t0, 1),
    }
    write_head(args.out, m, nf, meta)
    print(f"wrote {args.out} ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
