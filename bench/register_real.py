#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Registration on real follow-up films: every consecutive same-view pair of
../shared/data/nih/series1024 (visit order from Follow-up #).

For each pair A, B: register B to A and A to B; inverse consistency is how
far the film centre of A lands from itself after A->B->A (px). For each
consecutive same-view triple A, B, C: transitivity is the distance between
A's centre mapped A->B->C and A->C (px). Also the structure NCC before and
after alignment and the status. A pair counts as consistent when the inverse
error is <= 1 px and every triple it is part of (as A->B or B->C) is within
2 px. Target: >= 95% of pairs consistent, and every inconsistent pair marked
failed or low_confidence.

Usage: bench/register_real.py [path/to/cxrtrack] [--limit N]
"""
import csv, json, math, os, subprocess, sys, time

X = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "build/src/cxrtrack"
LIMIT = int(sys.argv[sys.argv.index("--limit") + 1]) if "--limit" in sys.argv else None
D = "../shared/data/nih"
rows = [r for r in csv.DictReader(open(D + "/images.csv")) if r["has_1024"] == "1"]
by = {}
for r in rows:
    by.setdefault(r["Patient ID"], []).append(r)
cache = {}


def reg(a, b):
    """Transform mapping points of film a to film b (register b to a)."""
    if (a, b) not in cache:
        out = subprocess.run([X, "register", f"{D}/series1024/{a}", f"{D}/series1024/{b}"],
                             capture_output=True, text=True)
        kv = dict(l.split(" ", 1) for l in out.stdout.strip().splitlines())
        cache[(a, b)] = {k: (v if k == "status" else float(v.split()[0])) for k, v in kv.items()}
    return cache[(a, b)]


def apply(t, x, y):
    th = math.radians(t["angle_deg"])
    s = t["scale"]
    return (s * (math.cos(th) * x - math.sin(th) * y) + t["dx_px"],
            s * (math.sin(th) * x + math.cos(th) * y) + t["dy_px"])


pairs, triples = [], []
for pid, films in by.items():
    films.sort(key=lambda r: int(r["Follow-up #"]))
    for i in range(len(films) - 1):
        a, b = films[i], films[i + 1]
        if a["View Position"] == b["View Position"]:
            pairs.append((a["Image Index"], b["Image Index"]))
        if i + 2 < len(films):
            c = films[i + 2]
            if a["View Position"] == b["View Position"] == c["View Position"]:
                triples.append((a["Image Index"], b["Image Index"], c["Image Index"]))
if LIMIT:
    pairs = pairs[:LIMIT]
    keep = set(pairs)
    triples = [t for t in triples if (t[0], t[1]) in keep and (t[1], t[2]) in keep]

t0 = time.time()
bad_pairs = set()
inv = {}
for a, b in pairs:
    ab, ba = reg(a, b), reg(b, a)
    x, y = apply(ba, *apply(ab, 0.0, 0.0))
    inv[(a, b)] = math.hypot(x, y)
    if inv[(a, b)] > 1:
        bad_pairs.add((a, b))
trans = {}
for a, b, c in triples:
    x1, y1 = apply(reg(b, c), *apply(reg(a, b), 0.0, 0.0))
    x2, y2 = apply(reg(a, c), 0.0, 0.0)
    trans[(a, b, c)] = math.hypot(x1 - x2, y1 - y2)
    if trans[(a, b, c)] > 2:
        bad_pairs.add((a, b))
        bad_pairs.add((b, c))

print(f"{'fixed':18}{'moving':18}{'status':16}{'conf':>6}{'asym':>6}{'ncc0':>7}{'ncc1':>7}{'inv_px':>8}  dx, dy, angle, scale")
n_ok = n_cons = n_flagged_bad = n_unflagged_bad = 0
for a, b in pairs:
    t = reg(a, b)
    flagged = t["status"] != "ok"
    bad = (a, b) in bad_pairs
    n_cons += not bad
    n_ok += not flagged
    n_unflagged_bad += bad and not flagged
    print(f"{a:18}{b:18}{t['status'].split()[0]:16}{t['confidence']:6.2f}{t['asymmetry_px']:6.1f}{t['ncc_before']:7.2f}{t['ncc_after']:7.2f}"
          f"{inv[(a, b)]:8.2f}  {t['dx_px']:.1f}, {t['dy_px']:.1f}, {t['angle_deg']:.2f}, {t['scale']:.3f}"
          + ("  INCONSISTENT" if bad else ""))
tv = sorted(trans.values())
print(f"\n{len(pairs)} same-view consecutive pairs, {len(triples)} triples, {time.time() - t0:.0f} s")
print(f"consistent (inverse <= 1 px, transitive <= 2 px): {n_cons}/{len(pairs)} = {100 * n_cons / max(1, len(pairs)):.1f}%")
print(f"status ok: {n_ok}; inconsistent but marked ok: {n_unflagged_bad}")
if tv:
    print(f"transitivity error px: median {tv[len(tv) // 2]:.2f}, max {tv[-1]:.2f}")
iv = sorted(inv.values())
print(f"inverse error px: median {iv[len(iv) // 2]:.2f}, 95th {iv[int(0.95 * (len(iv) - 1))]:.2f}, max {iv[-1]:.2f}")
okp = [reg(a, b) for a, b in pairs if reg(a, b)["status"] == "ok"]
if okp:
    print(f"median NCC before/after on ok pairs: {sorted(p['ncc_before'] for p in okp)[len(okp) // 2]:.2f}"
          f" / {sorted(p['ncc_after'] for p in okp)[len(okp) // 2]:.2f}")
