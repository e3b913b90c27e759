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

Every film of the NIH set is stored at 1024 x 1024 whatever its original
shape, so its pixels are not square in the patient: the pixel aspect
(height over width) comes from the original size in the full metadata, and
registrations and the transforms composed here go through the patient's
frame (cxr/register.h). --square registers as if every pixel were square.

The pair-level registrations run in one warm process (build/bench/
bench_register, the same cxr_register_pair as `cxrtrack register`, so the
same numbers). Then, unless --no-store, the whole pipeline's view: the full
NIH metadata and series1024 are ingested into a fresh store, `cxrtrack
analyze --no-model --no-diff` registers every pending pair with its chain
checks (src/analyze/register-chain.c), and the stored status of each consecutive pair is
set against the consistency measured here.

Check images: for a few pairs (named below, and the most and least
confident), out/register_real/FIXED__MOVING.png shows the two films
overlaid before (left) and after (right) alignment: FIXED in green, MOVING
(warped by `cxrtrack register --out`) in magenta, so what lines up is grey.

The same triples also go through OpenCV's ECC (affine, from the identity)
for comparison: no tool a user would otherwise pick is more consistent.

Usage: bench/register_real.py [build dir] [--limit N] [--no-store] [--no-ecc] [--jobs N] [--square]
"""
import csv, gzip, math, os, sqlite3, subprocess, sys, tempfile, time

import nih_series

B = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "build"
LIMIT = int(sys.argv[sys.argv.index("--limit") + 1]) if "--limit" in sys.argv else None
JOBS = sys.argv[sys.argv.index("--jobs") + 1] if "--jobs" in sys.argv else "0"
D = "../shared/data/nih"
subprocess.run(["sh", "bench/machine.sh"])
by = nih_series.series()
aspect = nih_series.aspects({r["Image Index"] for films in by.values() for r in films})
if "--square" in sys.argv:
    aspect = {k: 1.0 for k in aspect}

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

need = []
for a, b in pairs:
    need += [(a, b), (b, a)]
need += [(a, c) for a, b, c in triples]
need = list(dict.fromkeys(need))
t0 = time.time()
with tempfile.NamedTemporaryFile("w", suffix=".txt") as lst:
    lst.write("".join(f"{D}/series1024/{a} {D}/series1024/{b} {aspect[a]!r} {aspect[b]!r}\n"
                      for a, b in need))
    lst.flush()
    out = subprocess.run([f"{B}/bench/bench_register", lst.name], capture_output=True, text=True,
                         check=True)
R = {}
for (a, b), line in zip(need, out.stdout.strip().splitlines()):
    v = line.split(maxsplit=15)
    R[(a, b)] = dict(reason=v[15] if len(v) > 15 and v[15] != "-" else "", ms=float(v[0]), dx_px=float(v[1]), dy_px=float(v[2]), angle_deg=float(v[3]),
                     scale=float(v[4]), confidence=float(v[5]), status=v[6],
                     ncc_before=float(v[7]), ncc_after=float(v[8]), asymmetry_px=float(v[9]),
                     fa=aspect[a], ma=aspect[b])
t_reg = time.time() - t0


def apply(t, x, y):
    """FIXED px from its centre -> MOVING px from its centre (cxr_register_offset)."""
    th = math.radians(t["angle_deg"])
    s = t["scale"]
    y = y * t["fa"]
    return (s * (math.cos(th) * x - math.sin(th) * y) + t["dx_px"],
            s * (math.sin(th) * x + math.cos(th) * y) / t["ma"] + t["dy_px"])


bad_pairs = set()
inv = {}
for a, b in pairs:
    x, y = apply(R[(b, a)], *apply(R[(a, b)], 0.0, 0.0))
    inv[(a, b)] = math.hypot(x, y)
    if inv[(a, b)] > 1:
        bad_pairs.add((a, b))
trans = {}
for a, b, c in triples:
    x1, y1 = apply(R[(b, c)], *apply(R[(a, b)], 0.0, 0.0))
    x2, y2 = apply(R[(a, c)], 0.0, 0.0)
    trans[(a, b, c)] = math.hypot(x1 - x2, y1 - y2)
    if trans[(a, b, c)] > 2:
        bad_pairs.add((a, b))
        bad_pairs.add((b, c))

print(f"{'fixed':18}{'moving':18}{'status':16}{'conf':>6}{'asym':>6}{'ncc0':>7}{'ncc1':>7}{'inv_px':>8}  dx, dy, angle, scale")
n_ok = n_cons = n_unflagged_bad = 0
for a, b in pairs:
    t = R[(a, b)]
    flagged = t["status"] != "ok"
    bad = (a, b) in bad_pairs
    n_cons += not bad
    n_ok += not flagged
    n_unflagged_bad += bad and not flagged
    print(f"{a:18}{b:18}{t['status']:16}{t['confidence']:6.2f}{t['asymmetry_px']:6.1f}{t['ncc_before']:7.2f}{t['ncc_after']:7.2f}"
          f"{inv[(a, b)]:8.2f}  {t['dx_px']:.1f}, {t['dy_px']:.1f}, {t['angle_deg']:.2f}, {t['scale']:.3f}"
          + ("  INCONSISTENT" if bad else "") + (f"  ({t['reason']})" if t["reason"] else ""))
tv = sorted(trans.values())
ms = sorted(v["ms"] for v in R.values())
print(f"\n{len(pairs)} same-view consecutive pairs, {len(triples)} triples; {len(need)} registrations"
      f" in {t_reg:.0f} s, {ms[len(ms) // 2]:.1f} ms per pair (median, 1 thread, warm process)")
print(f"consistent (inverse <= 1 px, transitive <= 2 px): {n_cons}/{len(pairs)} = {100 * n_cons / max(1, len(pairs)):.1f}%")
print(f"pair level (cxrtrack register): status ok {n_ok}; inconsistent but ok {n_unflagged_bad}")
if tv:
    print(f"transitivity error px: median {tv[len(tv) // 2]:.2f}, max {tv[-1]:.2f};"
          f" triples within 2 px: {sum(t <= 2 for t in tv)}/{len(tv)}")
    # what disagrees: a similarity fit that is a compromise between regions
    # moves by a fraction of a degree and percent; another basin (one rib
    # off, another inspiration level matched) by degrees and percents
    for lo, hi in ((0, 2), (2, 10), (10, 30), (30, math.inf)):
        part = [(a, b, c) for a, b, c in triples if lo < trans[(a, b, c)] <= hi]
        if not part:
            continue
        da = sorted(abs(R[(a, b)]["angle_deg"] + R[(b, c)]["angle_deg"] - R[(a, c)]["angle_deg"])
                    for a, b, c in part)
        ds = sorted(abs(100 * (R[(a, b)]["scale"] * R[(b, c)]["scale"] / R[(a, c)]["scale"] - 1))
                    for a, b, c in part)
        span = f"{lo}-{hi} px" if hi < math.inf else f"> {lo} px"
        print(f"  triples {span:9}: {len(part):3}; A->B->C against A->C: angle differs by"
              f" {da[len(da) // 2]:.2f} deg, scale by {ds[len(ds) // 2]:.2f} % (medians)")
iv = sorted(inv.values())
print(f"inverse error px: median {iv[len(iv) // 2]:.2f}, 95th {iv[int(0.95 * (len(iv) - 1))]:.2f}, max {iv[-1]:.2f}")
okp = [R[p] for p in pairs if R[p]["status"] == "ok"]
if okp:
    print(f"median NCC before/after on pair-level ok pairs: {sorted(p['ncc_before'] for p in okp)[len(okp) // 2]:.2f}"
          f" / {sorted(p['ncc_after'] for p in okp)[len(okp) // 2]:.2f}")

CHECK = [("00007007_003.png", "00007007_004.png"), ("00003510_009.png", "00003510_010.png"),
         ("00005712_019.png", "00005712_022.png"), ("00000001_001.png", "00000001_002.png"),
         ("00004344_002.png", "00004344_036.png")]
by_conf = sorted(pairs, key=lambda p: R[p]["confidence"])
check = [p for p in CHECK if p in R] + by_conf[-2:] + by_conf[:1]
try:
    import cv2
    import numpy as np
    os.makedirs("out/register_real", exist_ok=True)
    for a, b in dict.fromkeys(check):
        fa, fb = f"{D}/series1024/{a}", f"{D}/series1024/{b}"
        warped = f"out/register_real/{a[:-4]}__{b[:-4]}.warped.png"
        subprocess.run([f"{B}/src/cxrtrack", "register", fa, fb, "--out", warped,
                        "--fixed-aspect", repr(aspect[a]), "--moving-aspect", repr(aspect[b])],
                       capture_output=True)
        F, M, W = (cv2.resize(cv2.imread(x, 0), (512, 512), interpolation=cv2.INTER_AREA)
                   for x in (fa, fb, warped))
        t = R[(a, b)]
        panels = [np.dstack([M, F, M]), np.dstack([W, F, W])]
        for img, text in zip(panels, ("before", f"after ({t['status']}, {t['confidence']:.2f})")):
            cv2.putText(img, f"{a[:-4]} -> {b[:-4]} {text}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (255, 255, 255), 1, cv2.LINE_AA)
        cv2.imwrite(f"out/register_real/{a[:-4]}__{b[:-4]}.png", np.hstack(panels))
        os.remove(warped)
    print(f"check images: out/register_real/ ({len(dict.fromkeys(check))} pairs)")
except ImportError:
    print("check images: skipped (no python3-opencv)")


def ecc_comparison():
    """The same triples through OpenCV's ECC (Evangelidis & Psarakis, PAMI
    2008), the intensity-based registration a user would otherwise pick:
    cv2.findTransformECC, MOTION_AFFINE (a superset of cxrtrack's model: it
    can also absorb the pixel aspect and some of an inspiration's vertical
    stretch), from the identity, on the films area-resampled to 256 px, the
    outer tenth masked, Gaussian 5 px. Transforms composed as 3x3 matrices in
    full-resolution pixels; transitivity at the film centre as above."""
    import cv2
    import numpy as np
    n, k = 256, 1024 / 256
    G = np.array([[k, 0, (k - 1) / 2 - 511.5], [0, k, (k - 1) / 2 - 511.5], [0, 0, 1]])
    Gi = np.linalg.inv(G)
    mask = np.zeros((n, n), np.uint8)
    mask[n // 10:-n // 10, n // 10:-n // 10] = 1
    small, T, fails = {}, {}, 0
    t0 = time.time()
    for a, b in need:
        for x in (a, b):
            if x not in small:
                small[x] = cv2.resize(cv2.imread(f"{D}/series1024/{x}", 0), (n, n),
                                      interpolation=cv2.INTER_AREA).astype(np.float32)
        W = np.eye(2, 3, dtype=np.float32)
        try:
            _, W = cv2.findTransformECC(small[a], small[b], W, cv2.MOTION_AFFINE,
                                        (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5),
                                        mask, 5)
        except cv2.error:
            fails += 1  # did not converge: the identity stands
        T[(a, b)] = G @ np.vstack([W, [0, 0, 1]]) @ Gi
    ms = 1000 * (time.time() - t0) / max(1, len(T))
    centre = lambda M: M[:2, 2]
    einv = {p: float(np.hypot(*centre(T[p[::-1]] @ T[p]))) for p in pairs}
    etr = {t: float(np.hypot(*(centre(T[t[1:]] @ T[t[:2]]) - centre(T[(t[0], t[2])])))) for t in triples}
    bad = {p for p in pairs if einv[p] > 1}
    for a, b, c in triples:
        if etr[(a, b, c)] > 2:
            bad |= {(a, b), (b, c)}
    ev, cv = sorted(etr.values()), sorted(trans.values())
    print(f"\nsame triples, OpenCV ECC (affine, from the identity, 256 px; {ms:.0f} ms per pair"
          f" with decoding; {fails} of {len(T)} did not converge):")
    iv = sorted(einv.values())
    print(f"  OpenCV ECC  consistent pairs {len(pairs) - len(bad)}/{len(pairs)} (cxrtrack {n_cons});"
          f" inverse error px: median {iv[len(iv) // 2]:.2f}, within 1 px {sum(x <= 1 for x in iv)}/{len(iv)}")
    for name, v in (("cxrtrack", cv), ("OpenCV ECC", ev)):
        print(f"  {name:11} transitivity px: median {v[len(v) // 2]:6.2f}; triples within 2 px"
              f" {sum(x <= 2 for x in v):2}/{len(v)}, within 5 px {sum(x <= 5 for x in v):2}/{len(v)}")


if triples and "--no-ecc" not in sys.argv:
    try:
        ecc_comparison()
    except ImportError:
        print("OpenCV ECC comparison: skipped (no python3-opencv)")

if "--no-store" in sys.argv:
    sys.exit(0)
X = f"{B}/src/cxrtrack"
with tempfile.TemporaryDirectory() as tmp:
    db = os.path.join(tmp, "s.sqlite")
    subprocess.run([X, "ingest", "--db", db, "--nih", f"{D}/Data_Entry_2017_v2020.csv.gz",
                    "--images", f"{D}/series1024"], check=True, capture_output=True)
    t0 = time.time()
    out = subprocess.run([X, "analyze", "--db", db, "--no-model", "--no-diff", "--jobs", JOBS],
                         check=True, capture_output=True, text=True, env=dict(os.environ, CXR_NO_PROGRESS="1"))
    print(f"\nanalyze --no-model --no-diff over series1024 ({time.time() - t0:.0f} s):")
    print(out.stdout.strip())
    con = sqlite3.connect(db)
    if "--square" in sys.argv:
        print("(the store registers with the pixel aspects of the metadata; --square is pair-level only)")
    why = {(f, m): w for f, m, w in con.execute(
        "SELECT f.image_index, m.image_index, r.reason FROM registrations r"
        " JOIN scans f ON f.scan_id = r.fixed_scan_id JOIN scans m ON m.scan_id = r.moving_scan_id"
        " WHERE r.kind = 'previous'")}
    st = {(f, m): s for f, m, s in con.execute(
        "SELECT f.image_index, m.image_index, r.status FROM registrations r"
        " JOIN scans f ON f.scan_id = r.fixed_scan_id JOIN scans m ON m.scan_id = r.moving_scan_id"
        " WHERE r.kind = 'previous'")}
    missing = [p for p in pairs if p not in st]
    if missing:
        print(f"not stored as previous-film pairs: {len(missing)} (e.g. {missing[0]})")
    stored = [p for p in pairs if p in st]
    count = {k: sum(st[p] == k for p in stored) for k in ("ok", "low_confidence", "failed")}
    ok_bad = [p for p in stored if st[p] == "ok" and p in bad_pairs]
    ok_good = [p for p in stored if st[p] == "ok" and p not in bad_pairs]
    print(f"stored status of the {len(stored)} same-view consecutive pairs: ok {count['ok']},"
          f" low_confidence {count['low_confidence']}, failed {count['failed']}")
    print(f"inconsistent pairs stored ok: {len(ok_bad)} of {len(bad_pairs & set(stored))}"
          f" (target 0); consistent pairs stored ok: {len(ok_good)} of {len(set(stored) - bad_pairs)}")
    for a, b in ok_bad:
        print(f"  inconsistent, stored ok: {a} -> {b}")
    reasons = {}
    for p in stored:
        if st[p] != "ok":
            k = (st[p], why[p] or "")
            reasons[k] = reasons.get(k, 0) + 1
    for (status, reason), n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {status}: {n} ({reason})")
