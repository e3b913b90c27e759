#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Brixia severity against radiologists' reads (../shared/data/brixia, the
development half of the BrixIA public annotations).

Printed, each against the senior reader (S) and the junior (J):
  * the ceiling: the junior reader against the senior, per film and per
    consecutive pair;
  * cxrtrack out of fold: every film scored by a head fitted without its
    patient (grouped 5-fold cross-validation, the ridge strength chosen
    inside each fold, tools/train_severity.py), over three fold seeds:
    the figure to expect on patients never seen, and the one to compare
    with the issue's targets (which are judged on other patients);
  * the shipped head (models/cxr-severity.safetensors) on the same films:
    it was fitted on all of them, so these figures are optimistic and
    printed only to show the gap;
  * per consecutive same-series pair (visit order), the Spearman of the
    global delta against the readers', and the direction agreement where
    the senior's global moved by 2 or more;
  * the films where cxrtrack and the senior disagree most, with the zones;
  * the time of the zone features and head per film (not the classifier or
    the lungs, which analyze computes anyway).

Usage: bench/severity.py [--build DIR]
"""
import os
import subprocess
import sys
from collections import defaultdict

import numpy as np
from scipy.stats import spearmanr

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import train_severity as T  # noqa: E402


def arg(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def pairs_of(rows):
    """Consecutive films of each series with visit numbers: (i, j) indices."""
    by = defaultdict(list)
    for i, r in enumerate(rows):
        if r["visit"] != "":
            by[r["series_id"]].append((int(r["visit"]), i))
    out = []
    for s in by.values():
        s.sort()
        out += [(a[1], b[1]) for a, b in zip(s, s[1:])]
    return out


def pair_figures(g, S, J, pairs):
    """Spearman of global deltas and direction agreement (|S delta| >= 2)."""
    d = np.array([g[b] - g[a] for a, b in pairs])
    ds = np.array([S[b].sum() - S[a].sum() for a, b in pairs])
    dj = np.array([J[b].sum() - J[a].sum() for a, b in pairs])
    big = np.abs(ds) >= 2
    return {
        "n": len(pairs),
        "rho_S": spearmanr(d, ds).correlation,
        "rho_J": spearmanr(d, dj).correlation,
        "n_moved": int(big.sum()),
        "direction_S": float((np.sign(d[big]) == np.sign(ds[big])).mean()) if big.any() else np.nan,
    }


def line(label, f, p):
    return (f"{label:34s} film: Spearman S {f['spearman_global_S']:.3f} J {f['spearman_global_J']:.3f}"
            f"  zone MAD {f['mad_zone_S']:.3f} exact {f['exact_zone_S']:.3f}  global MAD "
            f"{f['mad_global_S']:.2f} | pairs ({p['n']}): delta Spearman S {p['rho_S']:.3f}"
            f" J {p['rho_J']:.3f}, direction {p['direction_S']:.2f} of {p['n_moved']}")


def main():
    build = arg("--build", os.path.join(ROOT, "build"))
    exe = os.path.join(build, "src", "cxrtrack")
    print(subprocess.run(["sh", os.path.join(HERE, "machine.sh")], capture_output=True,
                         text=True).stdout.strip())
    data = os.path.join(ROOT, "..", "shared", "data", "brixia")
    rows, F, S, J, Y, groups = T.dataset(data, exe)
    pairs = pairs_of(rows)
    print(f"development half: {len(rows)} films of {len(set(groups))} patients, {len(pairs)} "
          f"consecutive pairs; zones drawn: "
          + ", ".join(f"{m} {sum(1 for r in rows if r['zone_method'] == m)}"
                      for m in sorted({r["zone_method"] for r in rows})))
    print(line("junior reader vs senior (ceiling)", T.figures(J, S, J),
               pair_figures(J.sum(1), S, J, pairs)))
    which = "own+cam+film"
    oof = []
    for seed in (0, 1, 2):
        P, _ = T.oof_predict(F, Y, groups, which, 14, seed=seed)
        oof.append(P)
        print(line(f"cxrtrack out of fold (seed {seed})", T.figures(P, S, J),
                   pair_figures(P.sum(1), S, J, pairs)))
        # the grades `cxrtrack severity` prints beside the scores: each
        # zone to the nearest whole grade, halves up
        G = np.floor(P + 0.5)
        print(line(f"  its grades (seed {seed})", T.figures(G, S, J), pair_figures(G.sum(1), S, J, pairs)))
    # the shipped head, as cxrtrack severity prints it
    out = subprocess.run([exe, "severity", "--format", "json"] + [r["path"] for r in rows],
                         capture_output=True, text=True)
    import json
    js = {d["file"]: d for d in map(json.loads, out.stdout.splitlines())}
    Ph = np.array([[js[r["path"]]["zones"][z] for z in "ABCDEF"] for r in rows])
    print(line("shipped head (fitted on these)", T.figures(Ph, S, J),
               pair_figures(Ph.sum(1), S, J, pairs)))
    ms = np.array([js[r["path"]]["elapsed_ms"] for r in rows])
    print(f"zone features and head: median {np.median(ms):.2f} ms per film, p90 "
          f"{np.percentile(ms, 90):.2f} ms (one core; films up to 1024 px)")
    P = oof[0]
    err = P.sum(1) - S.sum(1)
    print("largest disagreements (out of fold, seed 0): film, view, senior zones A-F, cxrtrack")
    for i in np.argsort(-np.abs(err))[:8]:
        r = rows[i]
        print(f"  {r['filename'][:48]:48s} {r['view'] or '?':9s} S {S[i].astype(int)} "
              f"({S[i].sum():.0f})  cxrtrack {np.round(P[i], 1)} ({P[i].sum():.1f})")
    by_view = defaultdict(list)
    for i, r in enumerate(rows):
        by_view[r["view"] or "?"].append(i)
    print("out of fold by view: " + ", ".join(
        f"{v} n={len(ix)} rho {spearmanr(P[ix].sum(1), S[ix].sum(1)).correlation:.2f}"
        for v, ix in sorted(by_view.items())))
    lo = S.sum(1) <= 2
    print(f"films the senior scored 0-2 (n={lo.sum()}): cxrtrack global mean {P[lo].sum(1).mean():.1f};"
          f" 12-18 (n={(S.sum(1) >= 12).sum()}): {P[S.sum(1) >= 12].sum(1).mean():.1f}")


if __name__ == "__main__":
    main()
