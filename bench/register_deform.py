#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Registration of real follow-up pairs, side by side with elastix: every
consecutive same-view pair of ../shared/data/nih/series1024 (visit order
from Follow-up #), registered

  - by cxrtrack's global stage alone (CXR_BENCH_NO_DEFORM=1),
  - by cxrtrack with its deformable stage (the default), both with the
    films' lung fields and pixel aspects as `analyze` uses them, in one
    warm process (build/bench/bench_register, the same cxr_register_pair
    as `cxrtrack register`), on one core;
  - by elastix 5.0.1 (Debian's), affine then affine + B-spline (96 px
    grid), parameter files bench/elastix/*.txt, one thread;

and judged the same way for all: NCC of the film intensities, FIXED
against the warped MOVING, on a 256-px copy, (a) in the central 70 % box
and (b) inside FIXED's lung fields (`cxrtrack lungs`), where the warped
film has data; the lung overlap (Dice) of FIXED's lung fields with
MOVING's warped by each method (transformix for elastix); and CPU time
per pair. Then cxrtrack's status: how many pairs are ok, that every ok
pair has Dice >= 0.90 and NCC after > before, and the reasons for the
rest. Checkerboards (FIXED and warped MOVING in 64-px tiles: unaligned |
cxrtrack global | cxrtrack + deformable | elastix B-spline) of 10 pairs go to out/register_deform/.

--train256: the same for the consecutive same-view pairs of the patients
with two films or more in ../shared/data/nih/train256 who are not in
series1024 (other patients than the dev ones, their films at 256 px);
elastix's B-spline grid scaled with the film (24 px instead of 96).

--dev256: the dev pairs (series1024) brought to 256 px (area averaging),
with elastix's grid scaled as for --train256: whether a figure that
differs between the two sets follows the patients or the films' size.
--refine: cxrtrack's deformable stage with its intensity refinement
(deform_refine_steps 20, as `cxrtrack register --refine`).

Usage: bench/register_deform.py [build dir] [--limit N] [--no-elastix] [--jobs N] [--train256]
                                [--dev256] [--refine]
"""
import csv, gzip, os, resource, subprocess, sys, tempfile, time

import cv2
import numpy as np

import nih_series

B = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "build"
LIMIT = int(sys.argv[sys.argv.index("--limit") + 1]) if "--limit" in sys.argv else None
JOBS = int(sys.argv[sys.argv.index("--jobs") + 1]) if "--jobs" in sys.argv else 1
ELASTIX = "--no-elastix" not in sys.argv
D = "../shared/data/nih"
TRAIN256 = "--train256" in sys.argv
DEV256 = "--dev256" in sys.argv and not TRAIN256
REFINE = "--refine" in sys.argv  # the deformable stage with deform_refine_steps 20 (register --refine)
OUT = ("out/register_deform_train256" if TRAIN256 else
       "out/register_deform_dev256" if DEV256 else "out/register_deform")
LUNG_MODEL = os.environ.get("CXRTRACK_LUNG_MODEL", "models/cxr-lungs.safetensors")
os.makedirs(OUT, exist_ok=True)
subprocess.run(["sh", "bench/machine.sh"])

by = nih_series.series()
BSPLINE = "bench/elastix/bspline.txt"
if TRAIN256 or DEV256:
    BSPLINE = f"{OUT}/bspline256.txt"
    with open(BSPLINE, "w") as fh:
        fh.write(open("bench/elastix/bspline.txt").read().replace(
            "(FinalGridSpacingInPhysicalUnits 96)", "(FinalGridSpacingInPhysicalUnits 24)"))
if TRAIN256:
    have = set(os.listdir(f"{D}/train256"))
    dev = set(by)
    by = {}
    for r in csv.DictReader(open(D + "/images.csv")):
        if r["Image Index"] in have and r["Patient ID"] not in dev:
            by.setdefault(r["Patient ID"], []).append(r)
    for films in by.values():
        films.sort(key=lambda r: int(r["Follow-up #"]))
aspect = nih_series.aspects({r["Image Index"] for films in by.values() for r in films})
pairs = []
for pid, films in sorted(by.items()):
    for a, b in zip(films, films[1:]):
        if a["View Position"] == b["View Position"]:
            pairs.append((a["Image Index"], b["Image Index"], a["View Position"]))
if LIMIT:
    pairs = pairs[:LIMIT]
print(f"{len(pairs)} consecutive same-view pairs "
      f"({sum(p[2] == 'AP' for p in pairs)} AP, {sum(p[2] == 'PA' for p in pairs)} PA)")
path = (lambda n: f"{D}/train256/{n}") if TRAIN256 else (lambda n: f"{D}/series1024/{n}")
if DEV256:
    os.makedirs(f"{OUT}/films", exist_ok=True)
    for n in sorted({p[0] for p in pairs} | {p[1] for p in pairs}):
        img = cv2.imread(f"{D}/series1024/{n}", cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(f"{OUT}/films/{n}", cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA))
    path = lambda n: f"{OUT}/films/{n}"

# lung fields of every film, by the shipped segmenter
lungdir = f"{OUT}/lungs"
os.makedirs(lungdir, exist_ok=True)
lung_ok = {}
for n in sorted({p[0] for p in pairs} | {p[1] for p in pairs}):
    r = subprocess.run([f"{B}/src/cxrtrack", "lungs", "--model", LUNG_MODEL, path(n), "--out",
                        f"{lungdir}/{n}", "--format", "json"], capture_output=True, text=True)
    lung_ok[n] = '"status": "ok"' in r.stdout


def small(img):
    return cv2.resize(img.astype(np.float32), (256, 256), interpolation=cv2.INTER_AREA)


def ncc(a, b, m):
    a, b = a[m], b[m]
    if a.size < 100:
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else float("nan")


def dice(a, b):
    s = a.sum() + b.sum()
    return float(2 * (a & b).sum() / s) if s else float("nan")


box = np.zeros((256, 256), bool)
box[38:218, 38:218] = True


def judge(fixed, warped, warped_mask):
    """NCC in the box and in FIXED's lungs; Dice of the lungs (or NaN)."""
    F, W = small(cv2.imread(path(fixed), cv2.IMREAD_GRAYSCALE)), small(warped)
    valid = W > 0.5
    fl = small(cv2.imread(f"{lungdir}/{fixed}", cv2.IMREAD_GRAYSCALE)) > 127
    r = dict(box=ncc(F, W, box & valid), lungs=ncc(F, W, fl & valid) if lung_ok[fixed] else float("nan"))
    r["dice"] = dice(fl, small(warped_mask) > 127) if warped_mask is not None else float("nan")
    return r


def cxrtrack(deform):
    tag = "deform" if deform else "global"
    wdir = f"{OUT}/{tag}"
    os.makedirs(wdir, exist_ok=True)
    env = dict(os.environ, CXR_BENCH_LUNGS=LUNG_MODEL, CXR_BENCH_OUT=wdir,
               CXR_BENCH_NO_DEFORM="0" if deform else "1", OMP_NUM_THREADS="1",
               CXR_BENCH_REFINE="20" if REFINE and deform else "0")
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as lst:
        lst.write("".join(f"{path(a)} {path(b)} {aspect[a]!r} {aspect[b]!r}\n" for a, b, _ in pairs))
        lst.flush()
        out = subprocess.run(["taskset", "-c", "0", f"{B}/bench/bench_register", lst.name],
                             capture_output=True, text=True, check=True, env=env)
    res = {}
    for i, ((a, b, _), line) in enumerate(zip(pairs, out.stdout.strip().splitlines())):
        v = line.split(maxsplit=15)
        r = dict(ms=float(v[0]), status=v[6], ncc_before=float(v[7]), ncc_after=float(v[8]),
                 ncc_global=float(v[10]), dice_internal=float(v[11]), deformable=v[12] == "1",
                 rms=float(v[13]), folds=int(v[14]), reason=v[15] if v[15] != "-" else "")
        w = cv2.imread(f"{wdir}/{i + 1}.png", cv2.IMREAD_GRAYSCALE)
        r.update(judge(a, w, None))
        r["warped"] = f"{wdir}/{i + 1}.png"
        res[(a, b)] = r
    return res


def unaligned():
    res = {}
    for a, b, _ in pairs:
        w = cv2.imread(path(b), cv2.IMREAD_GRAYSCALE)
        m = cv2.imread(f"{lungdir}/{b}", cv2.IMREAD_GRAYSCALE) if lung_ok[b] else None
        res[(a, b)] = judge(a, w, m)
    return res


def elastix_pair(job):
    a, b, _ = job
    d = tempfile.mkdtemp(prefix="elx", dir=OUT)
    t0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["elastix", "-f", path(a), "-m", path(b), "-p", "bench/elastix/affine.txt",
                    "-p", BSPLINE, "-out", d, "-threads", "1"],
                   capture_output=True, check=True)
    t1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (t1.ru_utime + t1.ru_stime) - (t0.ru_utime + t0.ru_stime)
    # the moving lung mask through the same transforms, nearest neighbour
    masks = {}
    if lung_ok[b]:
        for stage in (0, 1):
            tp = open(f"{d}/TransformParameters.{stage}.txt").read()
            tp = tp.replace("(FinalBSplineInterpolationOrder 3)", "(FinalBSplineInterpolationOrder 0)")
            open(f"{d}/mask{stage}.txt", "w").write(tp)
            md = f"{d}/m{stage}"
            os.makedirs(md)
            subprocess.run(["transformix", "-in", f"{lungdir}/{b}", "-tp", f"{d}/mask{stage}.txt",
                            "-out", md, "-threads", "1"], capture_output=True, check=True)
            masks[stage] = cv2.imread(f"{md}/result.png", cv2.IMREAD_GRAYSCALE)
    return a, b, d, cpu, masks


def elastix_all():
    from concurrent.futures import ThreadPoolExecutor
    aff, bsp = {}, {}
    with ThreadPoolExecutor(JOBS) as ex:
        for a, b, d, cpu, masks in ex.map(elastix_pair, pairs):
            for stage, res in ((0, aff), (1, bsp)):
                w = cv2.imread(f"{d}/result.{stage}.png", cv2.IMREAD_GRAYSCALE)
                r = judge(a, w, masks.get(stage))
                r["ms"] = cpu * 1000
                r["warped"] = f"{d}/result.{stage}.png"
                res[(a, b)] = r
    return aff, bsp


t0 = time.time()
U = unaligned()
G = cxrtrack(False)
C = cxrtrack(True)
# cxrtrack's lung Dice, judged as elastix's is: MOVING's mask warped by the
# same transform (bench_register reports it on the registration's own grid)
for (a, b), r in C.items():
    r["dice"] = r["dice_internal"]
for (a, b), r in G.items():
    r["dice"] = r["dice_internal"]
methods = [("none", U), ("cxrtrack global", G),
           ("cxrtrack + deformable" + (", refined" if REFINE else ""), C)]
if ELASTIX:
    EA, EB = elastix_all()
    methods += [("elastix affine", EA), ("elastix affine + B-spline", EB)]
print(f"(all runs: {time.time() - t0:.0f} s)")


def stats(vals):
    v = np.array([x for x in vals if x == x])
    return (np.median(v), v.mean(), len(v)) if len(v) else (float("nan"),) * 2 + (0,)


print("\n| method | CPU per pair, median | NCC central box, median (mean) | NCC lung fields, median (mean) "
      "| lung Dice, median (mean) | worse than unaligned (lungs) |")
print("|---|---|---|---|---|---|")
for name, R in methods:
    ms = [R[(a, b)].get("ms", float("nan")) for a, b, _ in pairs]
    bx = stats(R[(a, b)]["box"] for a, b, _ in pairs)
    lu = stats(R[(a, b)]["lungs"] for a, b, _ in pairs)
    dc = stats(R[(a, b)]["dice"] for a, b, _ in pairs)
    worse = sum(R[(a, b)]["lungs"] < U[(a, b)]["lungs"] for a, b, _ in pairs) if R is not U else 0
    t = "–" if R is U else (f"{np.median(ms):.0f} ms" if np.median(ms) < 1000 else f"{np.median(ms) / 1000:.2f} s")
    print(f"| {name} | {t} | {bx[0]:.3f} ({bx[1]:.3f}) | {lu[0]:.3f} ({lu[1]:.3f}), n={lu[2]} "
          f"| {dc[0]:.3f} ({dc[1]:.3f}) | {worse} |")
if ELASTIX:
    better = sum(C[(a, b)]["lungs"] >= EB[(a, b)]["lungs"] for a, b, _ in pairs)
    print(f"\ncxrtrack + deformable >= elastix B-spline on lung NCC: {better} of {len(pairs)} pairs")
    print(f"CPU ratio (elastix B-spline / cxrtrack): "
          f"{np.median([EB[k]['ms'] for k in EB]) / np.median([C[k]['ms'] for k in C]):.0f}x")

ok = [(a, b) for a, b, _ in pairs if C[(a, b)]["status"] == "ok"]
print(f"\ncxrtrack status: ok {len(ok)} of {len(pairs)} ({100 * len(ok) / len(pairs):.0f} %); deformable kept on "
      f"{sum(C[k]['deformable'] for k in C)}; folds on {sum(C[k]['folds'] > 0 for k in C)}")
bad_ok = [k for k in ok if not (C[k]["dice"] >= 0.90 and C[k]["ncc_after"] > C[k]["ncc_before"])]
print(f"ok pairs with Dice < 0.90 or NCC after <= before: {len(bad_ok)}")
reasons = {}
for a, b, _ in pairs:
    r = C[(a, b)]
    if r["status"] != "ok":
        reasons.setdefault(f"{r['status']}: {r['reason']}", []).append(f"{a}->{b}")
for k, v in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
    print(f"  {len(v)} {k}: {', '.join(v[:6])}{' ...' if len(v) > 6 else ''}")
print(f"global stage alone: ok {sum(G[k]['status'] == 'ok' for k in G)}")

print("\nper pair: fixed->moving view | NCC lungs none / global / deformable"
      + (" / elastix affine / B-spline" if ELASTIX else "") + " | Dice | rms px | status")
for a, b, v in pairs:
    k = (a, b)
    e = f" / {EA[k]['lungs']:.3f} / {EB[k]['lungs']:.3f}" if ELASTIX else ""
    print(f"  {a}->{b} {v} | {U[k]['lungs']:.3f} / {G[k]['lungs']:.3f} / {C[k]['lungs']:.3f}{e} | "
          f"{C[k]['dice']:.3f} | {C[k]['rms']:.1f} | {C[k]['status']}")


def checker(f, w, tile=64):
    y, x = np.mgrid[0:f.shape[0], 0:f.shape[1]]
    return np.where(((y // tile) + (x // tile)) % 2 == 0, f, w)


# ten pairs: the five the deformable stage moved most and five not ok
pick = sorted(pairs, key=lambda p: -C[(p[0], p[1])]["rms"])[:5]
pick += [p for p in pairs if C[(p[0], p[1])]["status"] != "ok" and p not in pick][:5]
for i, (a, b, _) in enumerate(pick):
    f = cv2.resize(cv2.imread(path(a), cv2.IMREAD_GRAYSCALE), (512, 512), interpolation=cv2.INTER_AREA)
    panels = []
    for R in (U, G, C) + ((EB,) if ELASTIX else ()):
        w = cv2.imread(R[(a, b)]["warped"], cv2.IMREAD_GRAYSCALE) if "warped" in R[(a, b)] else cv2.imread(path(b), cv2.IMREAD_GRAYSCALE)
        panels.append(checker(f, cv2.resize(w, (512, 512), interpolation=cv2.INTER_AREA)))
    cv2.imwrite(f"{OUT}/check_{i:02d}_{a[:-4]}+{b[:-4]}.png", np.hstack(panels))
print(f"\ncheckerboards (unaligned | cxrtrack global | cxrtrack + deformable | elastix B-spline): {OUT}/check_*.png")
