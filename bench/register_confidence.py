#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The registration confidence, calibrated on real pairs graded by eye.

bench/data/registration_grades.csv holds one row per consecutive
('previous') registration of ../shared/data/nih/series1024 (150 pairs) and
of the COVID series (73 pairs): the two films and `aligned`, 1 or 0, read
from FIXED (green) and the warped MOVING (magenta), both histogram-
equalised, overlaid at 360 px, without the status or any number in view
(--render makes those pictures). Aligned means no double contour of the
lung outlines, the domes, the heart border or the ribs inside the lungs:
about 1 % of the film, ~10 px of a 1024-px film. A difference of density
(disease, exposure) is not misalignment. One reader, a developer, not a
radiologist: regrade the pictures and rerun to check the figures.

The pipeline runs on fresh stores (tools/real_stores.sh: the full NIH
metadata with series1024's films, the COVID manifest; `cxrtrack analyze`
with the default model) and the
stored evidence of each graded pair is set against its grade:
  - each measure's AUROC for aligned vs not, per set;
  - the logistic fit of the grade on the NCC after registration, pooled
    (the two numbers src/register/register.c and schema 0022 use);
  - its calibration out of fold (5 folds grouped by patient) and from one
    set to the other (fitted on series1024, read on the COVID series);
  - what the status rule makes of the pairs: of the pairs `ok`, the share
    aligned, and of the aligned pairs, the share `ok`.

Usage: bench/register_confidence.py [build dir] [--render STORE OUTDIR]
"""
import csv, math, os, sqlite3, subprocess, sys, tempfile

import numpy as np

B = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "build"
X = os.path.join(B, "src", "cxrtrack")
D = "../shared/data"
HERE = os.path.dirname(os.path.abspath(__file__))


def render(store, outdir):
    """Montages of six overlays per picture, each named by its row of the
    grades file to be: set the grades by eye, then add them."""
    import cv2
    os.makedirs(outdir, exist_ok=True)
    con = sqlite3.connect(store)
    rows = con.execute("""SELECT f.image_index, m.image_index, f.path FROM registrations r
        JOIN scans f ON f.scan_id = r.fixed_scan_id JOIN scans m ON m.scan_id = r.moving_scan_id
        WHERE r.kind = 'previous' ORDER BY m.patient_id, m.visit""").fetchall()
    S, tiles, n = 360, [], 0
    index = open(os.path.join(outdir, "pairs.csv"), "w", newline="")
    wr = csv.writer(index)
    wr.writerow(["tile", "fixed", "moving"])

    def flush():
        nonlocal n
        if tiles:
            while len(tiles) % 2:
                tiles.append(np.zeros_like(tiles[0]))
            n += 1
            cv2.imwrite(os.path.join(outdir, f"m{n:02d}.png"),
                        np.vstack([np.hstack(tiles[i:i + 2]) for i in range(0, len(tiles), 2)]))
            tiles.clear()
    with tempfile.TemporaryDirectory() as t:
        for k, (f, m, pf) in enumerate(rows):
            w = os.path.join(t, "w.png")
            subprocess.run([X, "register", "--db", store, f, m, "--out", w, "--format", "json"],
                           capture_output=True)
            if not os.path.exists(w):
                continue
            eq = lambda im: cv2.equalizeHist(cv2.resize(im, (S, S), interpolation=cv2.INTER_AREA))
            A, W = eq(cv2.imread(pf, 0)), eq(cv2.imread(w, 0))
            os.unlink(w)
            tile = np.dstack([W, A, W])
            cv2.putText(tile, str(k), (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2)
            tiles.append(tile)
            wr.writerow([k, f, m])
            if len(tiles) == 6:
                flush()
        flush()
    print(f"{len(rows)} pairs in {n} pictures under {outdir}; index {outdir}/pairs.csv")


def auroc(s, y):
    s, y = np.asarray(s, float), np.asarray(y)
    ok = ~np.isnan(s)
    s, y = s[ok], y[ok]
    p, q = s[y == 1], s[y == 0]
    if len(p) == 0 or len(q) == 0:
        return float("nan")
    return np.mean(p[:, None] > q[None, :]) + 0.5 * np.mean(p[:, None] == q[None, :])


def logit_fit(x, y):
    X = np.column_stack([np.ones(len(x)), x])
    w = np.zeros(2)
    for _ in range(100):
        p = 1 / (1 + np.exp(-X @ w))
        H = X.T @ (X * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        w -= np.linalg.solve(H, X.T @ (p - y))
    return w


def prob(w, x):
    return 1 / (1 + np.exp(-(w[0] + w[1] * np.asarray(x))))


def calibration(name, p, y):
    p, y = np.asarray(p), np.asarray(y)
    print(f"  {name}: n {len(y)}, aligned {y.mean():.2f}; AUROC {auroc(p, y):.3f}; "
          f"Brier {np.mean((p - y) ** 2):.3f} (the base rate alone: {np.mean((y.mean() - y) ** 2):.3f})")
    for a, b in ((0, 0.5), (0.5, 0.7), (0.7, 1.01)):
        m = (p >= a) & (p < b)
        if m.sum():
            print(f"    confidence {a:.1f}-{min(b, 1):.1f}: {m.sum():3d} pairs, "
                  f"mean confidence {p[m].mean():.2f}, aligned {y[m].mean():.2f}")


def stores(t):
    """Fresh analyzed stores of series1024 and the COVID series, made as
    every real-data check makes them (tools/real_stores.sh)."""
    subprocess.run(["sh", os.path.join(HERE, "..", "tools", "real_stores.sh"), t, B],
                   check=True, capture_output=True)
    return {"series1024": os.path.join(t, "series1024.sqlite"),
            "covid-series": os.path.join(t, "covid.sqlite")}


def main():
    if "--render" in sys.argv:
        i = sys.argv.index("--render")
        render(sys.argv[i + 1], sys.argv[i + 2])
        return
    subprocess.run(["sh", os.path.join(HERE, "machine.sh")])
    grades = list(csv.DictReader(open(os.path.join(HERE, "data", "registration_grades.csv"))))
    cols = ["confidence", "global_confidence", "ncc_before", "ncc_global", "ncc_after",
            "lung_dice_before", "lung_dice_after", "rms_displacement_px", "max_displacement_px",
            "jacobian_min", "jacobian_max", "status", "patient_id"]
    rows = []
    with tempfile.TemporaryDirectory() as t:
        db = stores(t)
        for g in grades:
            con = sqlite3.connect(db[g["set"]])
            r = con.execute(f"""SELECT {', '.join('r.' + c if c != 'patient_id' else 'f.patient_id'
                                                  for c in cols)}
                FROM registrations r JOIN scans f ON f.scan_id = r.fixed_scan_id
                JOIN scans m ON m.scan_id = r.moving_scan_id
                WHERE f.image_index = ? AND m.image_index = ? AND r.kind = 'previous'""",
                            (g["fixed"], g["moving"])).fetchone()
            if r is None:
                sys.exit(f"{g['set']}: no stored registration {g['fixed']} -> {g['moving']}")
            d = dict(zip(cols, r))
            d.update(set=g["set"], aligned=int(g["aligned"]))
            rows.append(d)
    num = lambda d, c: float("nan") if d[c] is None else float(d[c])
    sets = ["series1024", "covid-series"]
    print("\nEach measure's AUROC, aligned vs not (by eye):")
    print(f"  {'measure':22s}" + "".join(f"{s:>14s}" for s in sets))
    for c in cols[:-2]:
        line = f"  {c:22s}"
        for s in sets:
            sub = [d for d in rows if d["set"] == s]
            line += f"{auroc([num(d, c) for d in sub], [d['aligned'] for d in sub]):14.3f}"
        print(line)

    x = np.array([num(d, "ncc_after") for d in rows])
    y = np.array([d["aligned"] for d in rows], float)
    w = logit_fit(x, y)
    print(f"\nLogistic fit of the grade on ncc_after, all {len(rows)} pairs: "
          f"intercept {w[0]:.4f}, slope {w[1]:.4f} (src/register/register.c: ALIGNED_INTERCEPT, ALIGNED_SLOPE); "
          f"confidence 0.5 at ncc_after {-w[0] / w[1]:.3f}")
    print("\nCalibration out of fold (5 folds grouped by patient):")
    pats = sorted({d["set"] + str(d["patient_id"]) for d in rows})
    rng = np.random.default_rng(1)
    rng.shuffle(pats)
    fold = {p: i % 5 for i, p in enumerate(pats)}
    f = np.array([fold[d["set"] + str(d["patient_id"])] for d in rows])
    oof = np.zeros(len(rows))
    for k in range(5):
        oof[f == k] = prob(logit_fit(x[f != k], y[f != k]), x[f == k])
    isn = np.array([d["set"] == "series1024" for d in rows])
    calibration("both sets", oof, y)
    calibration("series1024", oof[isn], y[isn])
    calibration("covid-series", oof[~isn], y[~isn])
    print("\nFrom one set to the other (fitted on series1024, read on the COVID series):")
    calibration("covid-series", prob(logit_fit(x[isn], y[isn]), x[~isn]), y[~isn])
    stored = np.array([d["confidence"] for d in rows], float)
    print(f"\nStored confidence vs this fit: max |difference| {np.max(np.abs(stored - prob(w, x))):.4f}")

    print("\nThe status rule on the graded pairs (as stored by analyze):")
    for s in sets:
        sub = [d for d in rows if d["set"] == s]
        ok = [d for d in sub if d["status"] == "ok"]
        al = sum(d["aligned"] for d in sub)
        a_ok = sum(d["aligned"] for d in ok)
        print(f"  {s}: {len(ok)} of {len(sub)} ok; aligned among them {a_ok}/{len(ok)} = "
              f"{a_ok / max(len(ok), 1):.2f}; aligned pairs ok {a_ok}/{al} = {a_ok / max(al, 1):.2f}; "
              f"ok pairs with a field that folds: 0 by construction")
        lungs_ok = [d for d in sub if d["status"] != "failed" and d["lung_dice_after"] is not None
                    and d["lung_dice_after"] >= 0.90]
        a_l = sum(d["aligned"] for d in lungs_ok)
        print(f"    without the confidence (lungs overlap >= 0.90 only, the rule before): "
              f"{len(lungs_ok)} ok, aligned {a_l}/{len(lungs_ok)} = {a_l / max(len(lungs_ok), 1):.2f}")


if __name__ == "__main__":
    main()
