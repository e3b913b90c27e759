#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Which kinds of change, how large, does a difference map see?

Pairs (the unchanged ones are the reference for specificity):
  real     consecutive same-view pairs of one patient in
           ../shared/data/nih/series1024 (the dev patients) whose NIH labels
           are the same at both visits: FIXED = the earlier film, MOVING =
           the later one, as it is or with a change inserted into it;
  reposed  one film of each of those patients against a copy of itself
           re-posed (+-3 degrees, +-15 px, +-3 % scale) and re-exposed
           (gain and gamma 0.9-1.1, noise), as bench/diff_lesions.py does:
           no cardiac, breathing or disease change between the two.
Changes, inserted into MOVING before it is re-posed, placed from the film's
own lung fields (`cxrtrack lungs`) and the whole lung the film shows
(cxr_lungs_cavity: behind the heart and below the domes), at graded sizes:
  nodule_lung     a sphere's projected thickness, diameter 4-15 mm, centre
                  contrast 0.006 per mm of diameter (0.06 for 10 mm, about
                  15 grey levels: bench/diff_lesions.py says why), in the
                  aerated lung field;
  nodule_heart    the same behind the heart (the left lung beyond its field,
                  lower half);
  nodule_dome     the same below a dome (beyond the field, under its
                  lowest third);
  effusion        a meniscus at one costophrenic angle, 1-5 cm high at the
                  chest wall and half that medially (concave upwards), the lung under it
                  brought to the density of the diaphragm below it with a
                  soft (3 mm) upper edge;
  consolidation   a lobulated opacity (a smoothed random field cut to an
                  area) covering 5-40 % of one zone (a third of a lung's
                  height), +0.08 (20 grey levels) at its core;
  pneumothorax    a rim of 1-4 cm at the apex and the upper lateral chest
                  wall with no lung markings (the film there smoothed by 8
                  mm and made 0.04 darker) and a 1 mm visceral pleural line
                  (+0.06) at its inner edge;
  edema           diffuse bilateral opacity over the whole lung, +5 to +20
                  grey levels, perihilar (full at the hila, half at the
                  periphery);
  heart           the cardiac silhouette widened: the cardiothoracic ratio
                  up by 5-15 % of the thorax's width (a third of it at the
                  right heart border, two thirds at the left), bulging most
                  at mid-heart height, the lung beside it brought to the
                  mediastinum's density on that row;
  volume_loss     one lower lobe losing volume, shown by its main sign: the
                  hemidiaphragm raised 1-4 cm at its dome (less towards the
                  angles), the lung above compressed into the smaller
                  height (its markings crowd), the dome's density below;
  effusion_supine fluid layering behind the lung on a supine film: a haze
                  over one hemithorax that grows from nothing at the apex
                  to +5..+20 grey levels at the base, markings kept, no
                  meniscus.
For every kind and size, the share of pairs detected at the threshold that
95 % of the same pairs without insertion stay below (the pair's
change_score, as analyze stores it), and the size detected half of the
time (linear between sizes); the nodules' AUC against the clean pairs. Both
comparison regions are run on the same pairs: the lung fields (mask_kind
'lungs') and the whole lung ('whole_lung').

The same pairs are also scored by the signals read from each film alone,
which no registration touches (`cxrtrack severity`, `predict`, `lungs`;
--no-film-signals to skip): the rise of the Brixia global and of the
largest zone, of the cardiothoracic ratio, of the larger side's lung area
lost, of the largest finding probability in units of its limit, and the
largest of all of them in units of each one's limit
(models/reference-limits.csv); `--regions ""` runs these alone.

Pictures: bench/out/change_types/KIND_SIZE.png (the whole film with the
insertion, then the inserted place with and without it; the first real pair
that takes each kind and size) and contact.jpg (a row per kind: the place
at each size, then without; docs/figures/change_types.jpg is a copy).

--train256: the patients never seen instead, their 256-px train256 films
(patients outside series1024), the re-posing's shift scaled to the film.

--dump CSV appends a row per comparison and region (region, FIXED, MOVING,
set, pair, kind, size, centre x, y in MOVING's film before re-posing,
change score, mask kind): to look at the insertions a map missed.

Usage: bench/change_types.py [--pairs N] [--build DIR] [--regions lungs,whole_lung]
                             [--kinds K,...] [--sets real,reposed] [--shift MM] [--no-film-signals]
                             [--map-deform [--map-refine N]]
                             [--train256] [--dump CSV]
"""
import argparse, collections, concurrent.futures, csv, gzip, json, math, os, random, subprocess, tempfile

import cv2
import numpy as np

from nihsets import unseen_train256
from synth import repose

ap = argparse.ArgumentParser()
ap.add_argument("--pairs", type=int, default=40)
ap.add_argument("--build", default="build")
ap.add_argument("--regions", default="lungs,whole_lung")
ap.add_argument("--kinds", default="")
ap.add_argument("--sets", default="real,reposed")
ap.add_argument("--shift", default=None, help="CXR_BENCH_EDGE_SHIFT (mm)")
ap.add_argument("--map-deform", action="store_true", help="maps through the deformable field (analyze --map-deform)")
ap.add_argument("--map-refine", type=int, default=0,
                help="with --map-deform: the deformable stage's intensity refinement, up to N steps (register --refine: 20)")
ap.add_argument("--pictures", default="bench/out/change_types")
ap.add_argument("--train256", action="store_true",
                help="the patients outside series1024: their train256 films (256 px)")
ap.add_argument("--dump", default=None,
                help="write every comparison's films, insertion and change score per region to this CSV")
ap.add_argument("--no-film-signals", action="store_true",
                help="score the change score only, not the signals read from each film")
args = ap.parse_args()

D = "../shared/data/nih"
CLI = f"{args.build}/src/cxrtrack"
subprocess.run(["sh", "bench/machine.sh"])
meta = {r["Image Index"]: r for r in csv.DictReader(gzip.open(f"{D}/Data_Entry_2017_v2020.csv.gz", "rt"))}
tmp = tempfile.mkdtemp()
rng = random.Random(32)

SIZES = {
    "nodule_lung": [4, 6, 8, 10, 15],
    "nodule_heart": [4, 6, 8, 10, 15],
    "nodule_dome": [4, 6, 8, 10, 15],
    "effusion": [1, 2, 3, 5],
    "consolidation": [5, 10, 20, 40],
    "pneumothorax": [1, 2, 3, 4],
    "edema": [5, 10, 15, 20],
    "heart": [5, 10, 15],
    "volume_loss": [1, 2, 3, 4],
    "effusion_supine": [5, 10, 15, 20],
}
UNIT = {"effusion": "cm", "consolidation": "% of a zone", "pneumothorax": "cm rim", "edema": "grey levels",
        "heart": "% CTR", "volume_loss": "cm", "effusion_supine": "grey levels"}
KINDS = [k for k in SIZES if not args.kinds or k in args.kinds.split(",")]


def spacing(name):
    """mm per px of the film as stored here (1024 px in series1024, 256 in
    train256)."""
    r = meta[name]
    return float(r["OriginalImagePixelSpacing[x"]) * float(r["OriginalImage[Width"]) / WIDTH


def labels(name):
    return frozenset(x for x in meta[name]["Finding Labels"].split("|") if x != "No Finding")


# the films: the dev patients' (series1024, 1024 px), or with --train256
# the 256-px train256 films of the patients outside series1024
if args.train256:
    FILMS, WIDTH = f"{D}/train256", 256
    films = unseen_train256(D)
else:
    FILMS, WIDTH = f"{D}/series1024", 1024
    films = sorted(os.listdir(FILMS))
# the real pairs: consecutive same-view films of a patient, labels unchanged
by_patient = collections.defaultdict(list)
for f in films:
    by_patient[meta[f]["Patient ID"]].append(f)
pairs = []
for pid, fs in sorted(by_patient.items()):
    fs.sort(key=lambda f: int(meta[f]["Follow-up #"]))
    for view in ("PA", "AP"):
        v = [f for f in fs if meta[f]["View Position"] == view]
        for a, b in zip(v, v[1:]):
            if labels(a) == labels(b):
                pairs.append((a, b))
rng.shuffle(pairs)
pairs = pairs[: args.pairs]


def lung_mask(path):
    out = os.path.join(tmp, os.path.basename(path) + ".mask.png")
    if not os.path.exists(out):
        subprocess.run([CLI, "lungs", path, "--out", out], capture_output=True, check=True)
    m = cv2.imread(out, 0)
    # the CLI writes both lungs as 255: label them by side (image left = right lung)
    n, lab, st, _ = cv2.connectedComponentsWithStats((m > 0).astype(np.uint8))
    out_lab = np.zeros(m.shape, np.uint8)
    for k in sorted(range(1, n), key=lambda k: -st[k, 4])[:2]:
        xs = np.nonzero(lab == k)[1]
        out_lab[lab == k] = 1 if xs.mean() < m.shape[1] / 2 else 2
    return out_lab


def cavity(mask):
    """cxr_lungs_cavity (src/nn/lungs-cavity.c), for placing insertions."""
    out = mask.copy()
    for label in (1, 2):
        rows = np.nonzero((mask == label).any(1))[0]
        if len(rows) == 0:
            continue
        top, bottom = rows[0], rows[-1]
        lo, hi = {}, {}
        for y in range(top, bottom + 1):
            xs = np.nonzero(mask[y] == label)[0]
            if len(xs):
                lo[y], hi[y] = xs[0], xs[-1]
            else:
                lo[y], hi[y] = lo[y - 1], hi[y - 1]
        span = bottom - top + 1
        b0, b1 = top + span // 6, top + span // 3
        line = sorted((hi if label == 1 else lo)[y] for y in range(b0, b1 + 1))[(b1 - b0 + 1) // 2]
        for y in range(top, bottom + 1):
            a, b = lo[y], hi[y]
            if y > b1:
                a, b = (a, max(b, line)) if label == 1 else (min(a, line), b)
            seg = out[y, a : b + 1]
            free = (seg == 0) & ((mask[y, a : b + 1] == 0) | (mask[y, a : b + 1] == label))
            seg[free] = label
    return out


def pick(region, R, g):
    """A random point of @region at least @R px inside it, or None."""
    inner = cv2.erode(region.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * R + 1, 2 * R + 1)))
    ys, xs = np.nonzero(inner)
    if len(ys) == 0:
        return None
    i = g.randrange(len(ys))
    return xs[i], ys[i]


def nodule(img, mask, cav, kind, d_mm, sp, g):
    h, w = img.shape
    R = d_mm / 2 / sp
    field = mask > 0
    if kind == "nodule_lung":
        region = field
    else:
        beyond = (cav > 0) & ~field
        rows = np.nonzero((mask > 0).any(1))[0]
        top, bottom = rows[0], rows[-1]
        yy = np.arange(h)[:, None]
        if kind == "nodule_heart":
            region = beyond & (cav == 2) & (yy > top + (bottom - top) // 2)
        else:
            # below each lung's dome: beyond the field, under the field's lowest third
            region = beyond & (yy > top + 2 * (bottom - top) // 3)
            for x in range(w):
                col = np.nonzero(field[:, x])[0]
                if len(col):
                    region[: col[-1] + 1, x] = False
    p = pick(region, max(2, int(R * 0.6)), g)
    if p is None:
        return None
    cx, cy = p
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / R**2
    c = 0.006 * d_mm
    return img + c * np.sqrt(np.clip(1 - r2, 0, 1)), (cx, cy)


def hemithorax(cav, g):
    """One side's whole lung, picked at random, and its rows (None if empty)."""
    side = g.choice([1, 2])
    reg = (cav == side).astype(np.uint8)
    rows = np.nonzero(reg.any(1))[0]
    return (side, reg, rows) if len(rows) else None


def effusion(img, mask, cav, cm, sp, g):
    hs = hemithorax(cav, g)
    if hs is None:
        return None
    side, reg, rows = hs
    bottom = rows[-1]
    h, w = img.shape
    H = cm * 10 / sp
    # the hemithorax's lower part, continued a little below its lowest row
    # (the fluid fills the costophrenic recess and hides the dome)
    low = reg.copy()
    low[: max(0, int(bottom - 1.2 * H))] = 0
    for y in range(bottom + 1, min(h, bottom + int(0.3 * H) + 1)):
        low[y] = reg[bottom]
    # to the chest wall: the field stops a few mm inside the ribs
    low = cv2.dilate(low, np.ones((1, 2 * int(4 / sp) + 1), np.uint8))
    cols = np.nonzero(low.any(0))[0]
    x0, x1 = cols[0], cols[-1]
    yy, xx = np.mgrid[0:h, 0:w]
    # 0 at the chest wall (lateral: image left for the right lung), 1 medially
    lat = (xx - x0) / max(x1 - x0, 1) if side == 1 else (x1 - xx) / max(x1 - x0, 1)
    lat = np.clip(lat, 0, 1)
    top = bottom - H * (0.5 + 0.5 * (1 - lat) ** 2)  # the meniscus: concave, highest at the wall
    soft = 3 / sp
    a = np.clip((yy - top) / soft, 0, 1) * low
    a = cv2.GaussianBlur(a.astype(np.float32), (0, 0), soft)
    # the density of the diaphragm under the lung: the film just below its lowest row
    band = img[min(h - 1, bottom + int(5 / sp)) : min(h, bottom + int(15 / sp)), x0 : x1 + 1]
    target = float(np.percentile(band, 60)) if band.size else float(img.max())
    out = img + a * np.clip(target - img, 0, None)
    return out, (int((x0 + x1) / 2), int(bottom - H / 2))


def consolidation(img, mask, cav, pct, sp, g):
    side = g.choice([1, 2])
    lung = mask == side
    rows = np.nonzero(lung.any(1))[0]
    if len(rows) == 0:
        return None
    top, bottom = rows[0], rows[-1]
    z = g.choice([0, 1, 2])
    zt = top + z * (bottom - top) // 3
    zb = top + (z + 1) * (bottom - top) // 3
    zone = lung.copy()
    zone[:zt] = False
    zone[zb + 1 :] = False
    area = zone.sum() * pct / 100
    # a lobulated blob: smoothed noise around a seed, cut to the area
    p = pick(zone, 3, g)
    if p is None:
        return None
    cx, cy = p
    h, w = img.shape
    rs = np.random.default_rng(g.randrange(1 << 30))
    noise = cv2.GaussianBlur(rs.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 12 / sp)
    noise /= noise.std() + 1e-9
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx - cx, yy - cy) / math.sqrt(area / math.pi)
    field = -dist + 0.35 * noise
    field[~zone] = -1e9
    thr = np.sort(field.ravel())[::-1][max(1, int(area)) - 1]
    blob = (field >= thr).astype(np.float32)
    blob = cv2.GaussianBlur(blob, (0, 0), 2 / sp)
    return img + 0.08 * blob * zone, (cx, cy)


def pneumothorax(img, mask, cav, cm, sp, g):
    side = g.choice([1, 2])
    lung = (mask == side).astype(np.uint8)
    if lung.sum() == 0:
        return None
    rows = np.nonzero(lung.any(1))[0]
    top, bottom = rows[0], rows[-1]
    dist = cv2.distanceTransform(lung, cv2.DIST_L2, 5)
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w]
    cols = np.nonzero(lung.any(0))[0]
    mid = (cols[0] + cols[-1]) / 2
    lateral = (xx < mid) if side == 1 else (xx > mid)
    upper = yy < top + 0.6 * (bottom - top)
    rimw = cm * 10 / sp
    rim = (lung > 0) & (dist < rimw) & (lateral | (yy < top + rimw * 1.2)) & upper
    if rim.sum() == 0:
        return None
    smooth = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 8 / sp) - 0.04
    a = cv2.GaussianBlur(rim.astype(np.float32), (0, 0), 0.5 / sp)
    out = img * (1 - a) + smooth * a
    line = np.exp(-((dist - rimw) ** 2) / (2 * (0.5 / sp) ** 2)) * (lung > 0) * (lateral | (yy < top + rimw * 1.2)) * upper
    out = out + 0.06 * line
    ys, xs = np.nonzero(rim)
    return out, (int(xs.mean()), int(ys.mean()))


def edema(img, mask, cav, grey, sp, g):
    lungs = (cav > 0).astype(np.float32)
    if lungs.sum() == 0:
        return None
    h, w = img.shape
    out_w = np.zeros((h, w), np.float32)
    for side in (1, 2):
        ys, xs = np.nonzero(cav == side)
        if len(ys) == 0:
            continue
        # the hilum: mid-height of the lung at its medial third
        hy = ys.mean()
        hx = np.percentile(xs, 80 if side == 1 else 20)
        d = np.hypot(xs - hx, ys - hy)
        out_w[ys, xs] = 1 - 0.5 * np.clip(d / d.max(), 0, 1)
    out_w = cv2.GaussianBlur(out_w, (0, 0), 5 / sp)
    return img + grey / 255 * out_w, (int(w / 2), int(h / 2))


def lung_rows(mask, label):
    """Each row's first and last pixel of lung @label (None where none)."""
    lo, hi = {}, {}
    for y in np.nonzero((mask == label).any(1))[0]:
        xs = np.nonzero(mask[y] == label)[0]
        lo[y], hi[y] = xs[0], xs[-1]
    return lo, hi


def heart(img, mask, cav, pct, sp, g):
    lo1, hi1 = lung_rows(mask, 1)  # the patient's right lung: image left
    lo2, hi2 = lung_rows(mask, 2)
    both = sorted(set(hi1) & set(lo2))
    if len(both) < 20:
        return None
    top, bottom = both[0], both[-1]
    xs = np.nonzero(mask.any(0))[0]
    thorax = xs[-1] - xs[0]
    # the heart's rows: the lower half of the lungs' common span
    y0, y1 = top + (bottom - top) // 2, bottom
    h, w = img.shape
    grow = pct / 100 * thorax
    # per row, the heart between the lungs' medial borders stretched
    # outwards (its own texture, not a painted band) and each lung beside
    # it compressed towards its lateral edge: a piecewise-linear map of x
    src_x = np.repeat(np.arange(w, dtype=np.float32)[None, :], h, 0)
    for y in range(y0, y1 + 1):
        if y not in hi1 or y not in lo2 or lo2[y] <= hi1[y]:
            continue
        bulge = math.sin(math.pi * (y - y0) / max(y1 - y0, 1)) ** 0.7
        L, R, xl, xr = hi1[y], lo2[y], lo1[y], hi2[y]
        d1 = min(grow / 3 * bulge, 0.6 * (L - xl))
        d2 = min(2 * grow / 3 * bulge, 0.6 * (xr - R))
        Ln, Rn = L - d1, R + d2
        x = np.arange(w, dtype=np.float32)
        m = x.copy()
        k = (x >= xl) & (x < Ln)
        m[k] = xl + (x[k] - xl) * (L - xl) / max(Ln - xl, 1)
        k = (x >= Ln) & (x <= Rn)
        m[k] = L + (x[k] - Ln) * (R - L) / max(Rn - Ln, 1)
        k = (x > Rn) & (x <= xr)
        m[k] = R + (x[k] - Rn) * (xr - R) / max(xr - Rn, 1)
        src_x[y] = m
    src_x = cv2.GaussianBlur(src_x, (1, 0), 0, sigmaY=2 / sp)  # rows blend, no seams
    src_y = np.repeat(np.arange(h, dtype=np.float32)[:, None], w, 1)
    out = cv2.remap(img.astype(np.float32), src_x, src_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    yc = (y0 + y1) // 2
    xc = (hi1[yc] + lo2[yc]) // 2 if yc in hi1 and yc in lo2 else w // 2
    return out, (int(xc), int(yc))


def volume_loss(img, mask, cav, cm, sp, g):
    side = g.choice([1, 2])
    lo, hi = lung_rows(mask, side)
    if len(lo) < 20:
        return None
    top, bottom = min(lo), max(lo)
    cols = np.nonzero((mask == side).any(0))[0]
    x0, x1 = cols[0], cols[-1]
    xc, half = (x0 + x1) / 2, max((x1 - x0) / 2, 1)
    h, w = img.shape
    H = cm * 10 / sp
    # the dome raised by H at its middle, less towards the angles
    xs = np.arange(w)
    rise = H * np.clip(1 - ((xs - xc) / half) ** 2, 0, 1) ** 0.5
    rise[(xs < x0) | (xs > x1)] = 0
    # each column of the hemithorax: rows top..bottom squeezed into
    # top..bottom - rise (the lung's content moved up), below it the dome
    yy = np.arange(h, dtype=np.float32)[:, None]
    newb = bottom - rise[None, :].astype(np.float32)
    span = max(bottom - top, 1)
    src_y = np.where(yy <= newb, top + (yy - top) * span / np.maximum(newb - top, 1), yy)
    src_y = np.where(yy < top, yy, src_y).astype(np.float32)
    src_x = np.repeat(xs[None, :].astype(np.float32), h, 0)
    warped = cv2.remap(img.astype(np.float32), src_x, src_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # under the raised dome, the density found under the old one, column by
    # column (the liver or the stomach's side below it): the fill meets the
    # film below without an edge
    b0, b1 = min(h - 1, bottom + int(5 / sp)), min(h, bottom + int(15 / sp))
    dens = np.median(img[b0:b1], axis=0) if b1 > b0 else img[h - 1]
    dens = cv2.GaussianBlur(dens[None, :].astype(np.float32), (0, 0), 5 / sp)[0]
    below = ((yy > newb) & (yy <= bottom)).astype(np.float32) * (rise[None, :] > 0)
    soft = 2 / sp
    dome = cv2.GaussianBlur(below, (0, 0), soft)
    out = warped * (1 - dome) + np.maximum(warped, dens[None, :]) * dome
    # only this hemithorax moves: faded in over a few mm at its sides
    wx = np.clip(np.minimum(xs - x0, x1 - xs) / (8 / sp), 0, 1)[None, :].astype(np.float32)
    out = img * (1 - wx) + out * wx
    return out, (int(xc), int(bottom - H / 2))


def effusion_supine(img, mask, cav, grey, sp, g):
    hs = hemithorax(cav, g)
    if hs is None:
        return None
    _, reg, rows = hs
    top, bottom = rows[0], rows[-1]
    h, w = img.shape
    # to the chest wall, a few mm beyond the field
    reg = cv2.dilate(reg, np.ones((1, 2 * int(4 / sp) + 1), np.uint8)).astype(np.float32)
    yy = np.arange(h, dtype=np.float32)[:, None]
    grad = np.clip((yy - top) / max(bottom - top, 1), 0, 1)
    a = cv2.GaussianBlur(reg * grad, (0, 0), 5 / sp)
    xs = np.nonzero(reg.any(0))[0]
    return img + grey / 255 * a, (int(xs.mean()), int(top + 0.75 * (bottom - top)))


def insert(kind, img, mask, cav, size, sp, g):
    if kind.startswith("nodule"):
        return nodule(img, mask, cav, kind, size, sp, g)
    return globals()[kind](img, mask, cav, size, sp, g)


def save(path, img):
    cv2.imwrite(path, (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))


os.makedirs(args.pictures, exist_ok=True)
lines, truth = [], []  # truth: (set, pair index, kind or None, size, centre)
shown = set()
sets = args.sets.split(",")
for pi, (a, b) in enumerate(pairs):
    for st in sets:
        if st == "real":
            fixed, src = f"{FILMS}/{a}", f"{FILMS}/{b}"
        else:
            fixed = src = f"{FILMS}/{b}"
        img = cv2.imread(src, 0).astype(np.float32) / 255
        sp = spacing(os.path.basename(src))
        mask = lung_mask(src)
        cav = cavity(mask)
        seed = 5000 + pi
        post = (lambda x: repose(x, seed, shift=15 * WIDTH / 1024)) if st == "reposed" else (lambda x: x)
        p = os.path.join(tmp, f"{st}{pi}_clean.png")
        save(p, post(img))
        lines.append(f"{fixed} {p} {spacing(os.path.basename(fixed))}")
        truth.append((st, pi, None, None, None))
        g = random.Random(seed * 7 + len(st))
        for kind in KINDS:
            for size in SIZES[kind]:
                r = insert(kind, img, mask, cav, size, sp, g)
                if r is None:
                    continue
                out, centre = r
                p = os.path.join(tmp, f"{st}{pi}_{kind}_{size}.png")
                save(p, post(out))
                lines.append(f"{fixed} {p} {spacing(os.path.basename(fixed))}")
                truth.append((st, pi, kind, size, centre))
                if st == "real" and (kind, size) not in shown:
                    shown.add((kind, size))
                    cx, cy = centre
                    half = 160
                    y0, x0 = max(0, cy - half), max(0, cx - half)
                    crop = lambda im: cv2.resize(im[y0 : y0 + 2 * half, x0 : x0 + 2 * half], (320, 320))
                    tile = np.hstack([crop(out), np.ones((320, 8), np.float32), crop(img)])
                    whole = cv2.resize(out, (320, 320))
                    save(os.path.join(args.pictures, f"{kind}_{size}.png"), np.hstack([whole, np.ones((320, 8), np.float32), tile]))
# the contact sheet: a row per kind, the inserted place at each size
# (left to right), then the same place without it
rows = []
for kind in KINDS:
    tiles = []
    for size in SIZES[kind]:
        p = os.path.join(args.pictures, f"{kind}_{size}.png")
        if os.path.exists(p):
            im = cv2.imread(p, 0)
            tiles.append(cv2.resize(im[:, 328:648], (200, 200)))
            last = cv2.resize(im[:, 656:976], (200, 200))
    if tiles:
        tiles += [np.zeros((200, 200), np.uint8)] * (5 - len(tiles)) + [last]
        row = np.hstack([np.pad(t, 2, constant_values=255) for t in tiles])
        cv2.putText(row, kind, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 2)
        rows.append(row)
if rows:
    cv2.imwrite(os.path.join(args.pictures, "contact.jpg"), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 85])
lst = os.path.join(tmp, "list.txt")
open(lst, "w").write("\n".join(lines))
print(f"\n{len(pairs)} real consecutive same-view label-stable pairs of "
      f"{'train256 (patients outside series1024, 256 px)' if args.train256 else 'series1024 (dev patients)'}; "
      f"{len(lines)} comparisons per region", flush=True)


def auc(pos, neg):
    pos, neg = np.asarray(pos), np.asarray(neg)
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg)))


def half_size(sizes, sens):
    for (s0, v0), (s1, v1) in zip(zip(sizes, sens), zip(sizes[1:], sens[1:])):
        if v0 >= 0.5:
            return s0
        if v1 >= 0.5:
            return s0 + (0.5 - v0) / (v1 - v0) * (s1 - s0)
    return sizes[0] if sens and sens[0] >= 0.5 else float("nan")


def film_signals(paths):
    """Each film's per-film measures as analyze stores them: the Brixia
    zones and global (`cxrtrack severity`), the classifier's probabilities
    (`cxrtrack predict`), the lungs' areas and the cardiothoracic ratio
    (`cxrtrack lungs`). Films a measure refuses get no entry for it."""
    out = {p: {} for p in paths}
    paths = sorted(paths)
    for i in range(0, len(paths), 100):
        chunk = paths[i : i + 100]
        sev = subprocess.run([CLI, "severity", *chunk, "--format", "json"], capture_output=True, text=True)
        pre = subprocess.run([CLI, "predict", *chunk, "--format", "json"], capture_output=True, text=True)
        # the CLI prints the file name as given: map back by position in the chunk
        by_name = {os.path.basename(c): c for c in chunk}
        for line in sev.stdout.splitlines():
            j = json.loads(line)
            if j.get("status") == "ok" and j.get("global") is not None:
                d = out[by_name[os.path.basename(j["file"])]]
                d["severity:global"] = j["global"]
                for z, v in j["zones"].items():
                    d[f"severity:{z}"] = v
        for line in pre.stdout.splitlines():
            j = json.loads(line)
            d = out[by_name[os.path.basename(j["file"])]]
            for f, v in j["probability"].items():
                d[f"probability:{f}"] = v

    def lungs(p):
        r = subprocess.run([CLI, "lungs", p, "--format", "json"], capture_output=True, text=True)
        return p, (json.loads(r.stdout) if r.returncode == 0 else None)

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        for p, j in ex.map(lungs, paths):
            if j and j["status"] == "ok":
                out[p]["area:right"] = j["right_area_px"]
                out[p]["area:left"] = j["left_area_px"]
                if j["cardiothoracic_ratio"] is not None:
                    out[p]["cardiothoracic_ratio"] = j["cardiothoracic_ratio"]
    return out


def reference_limits():
    """The limit each signal's flags use: the larger of cxrtrack's reference
    test-retest and visit-to-visit limits (models/reference-limits.csv)."""
    lim = {}
    for r in csv.DictReader(l for l in open("models/reference-limits.csv") if not l.startswith("#")):
        lim[r["signal"]] = max(float(r["limit_value"]), float(r["visit_limit"] or 0))
    return lim


def pair_signals(fs, ms, lim):
    """The pair's worsening in each film signal (later minus earlier, the
    direction each flag reads as worse), in the signal's own unit, and the
    largest of them in units of its limit ('any'). NaN where a film lacks it."""
    nan = float("nan")
    d = lambda k: ms[k] - fs[k] if k in ms and k in fs else nan
    zones = [d(f"severity:{z}") for z in "ABCDEF"]
    loss = [1 - ms[f"area:{s}"] / fs[f"area:{s}"] if f"area:{s}" in ms and fs.get(f"area:{s}", 0) > 0 else nan
            for s in ("right", "left")]
    probs = {k: d(k) for k in fs if k.startswith("probability:")}
    sig = {
        "severity_global": d("severity:global"),
        "severity_zone": np.nanmax(zones) if not np.all(np.isnan(zones)) else nan,
        "ctr": d("cardiothoracic_ratio"),
        "area_loss": np.nanmax(loss) if not np.all(np.isnan(loss)) else nan,
        "probability": max((v / lim[k] for k, v in probs.items() if not math.isnan(v)), default=nan),
    }
    units = [sig["severity_global"] / lim["severity:global"], sig["ctr"] / lim["cardiothoracic_ratio"],
             sig["probability"]]
    units += [z / lim[f"severity:{n}"] for z, n in zip(zones, "ABCDEF")]
    units += [l / lim[f"lung_area_loss:{s}"] for l, s in zip(loss, ("right", "left"))]
    units = [u for u in units if not math.isnan(u)]
    sig["any"] = max(units) if units else nan
    return sig


FILM_SIGNALS = ["severity_global", "severity_zone", "ctr", "area_loss", "probability", "any"]


def detection(scores, rows, st, label, unit_of):
    """Per kind and size, the share of set @st's pairs with an insertion
    whose @scores exceed the 95th percentile of the same pairs without one;
    returns {kind: (half size, {size: sensitivity})}."""
    clean = {t[1]: s for t, s in zip(rows, scores) if t[0] == st and t[2] is None and not math.isnan(s)}
    cv = np.array(list(clean.values()))
    thr = float(np.percentile(cv, 95))
    print(f"\n### {st} pairs, {label}: {len(cv)} compared; without insertion: median {np.median(cv):.4g}, "
          f"95th percentile {thr:.4g} (the threshold)")
    print("| kind | size | detected at 95 % specificity | AUC |")
    print("|---|---|---|---|")
    res = {}
    for kind in KINDS:
        sens = []
        for size in SIZES[kind]:
            pos = [s for t, s in zip(rows, scores) if t[0] == st and t[2] == kind and t[3] == size and t[1] in clean]
            pos = [(-1e30 if math.isnan(s) else s) for s in pos]
            if not pos:
                sens.append(float("nan"))
                continue
            se = float(np.mean(np.array(pos) > thr))
            sens.append(se)
            print(f"| {kind} | {size} {unit_of.get(kind, 'mm')} | {se:.2f} ({len(pos)}) | {auc(pos, cv):.2f} |")
        res[kind] = (half_size(SIZES[kind], sens), dict(zip(SIZES[kind], sens)))
    return res


def half_table(title, columns):
    """A table of the size detected half the time: a row per kind, a
    column per (header, detection() result)."""
    print(f"\n## {title}: size detected half the time at 95 % specificity (linear between sizes)")
    print("| kind | unit | " + " | ".join(h for h, _ in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for kind in KINDS:
        hs = [res.get(kind, (float("nan"),))[0] for _, res in columns]
        cells = ["not reached" if math.isnan(h) else f"{h:.1f}" for h in hs]
        print(f"| {kind} | {UNIT.get(kind, 'mm')} | " + " | ".join(cells) + " |", flush=True)


if not args.no_film_signals:
    comps = [l.split() for l in lines]
    fsig = film_signals({c[0] for c in comps} | {c[1] for c in comps})
    lim = reference_limits()
    ps = [pair_signals(fsig[c[0]], fsig[c[1]], lim) for c in comps]
    fsummary = {}
    print("\n## signals read from each film (the same on either comparison region)")
    print("Per pair, later minus earlier: severity_global (Brixia 0-18), severity_zone (the largest zone rise, 0-3), "
          "ctr (cardiothoracic ratio), area_loss (the larger side's share of lung area lost), probability (the "
          "largest rise of a finding's probability in units of its limit), any (the largest of all of these in "
          "units of each one's limit: models/reference-limits.csv, the larger of test-retest and visit-to-visit)")
    for st in sets:
        for name in FILM_SIGNALS:
            fsummary[(st, name)] = detection([p[name] for p in ps], truth, st, name, UNIT)
    half_table("film signals", [(f"{n} ({s})", fsummary[(s, n)]) for s in sets for n in FILM_SIGNALS])

summary = {}
REGIONS = [r for r in args.regions.split(",") if r]
for region in REGIONS:
    env = dict(os.environ, CXR_BENCH_LUNGS="models/cxr-lungs.safetensors", CXR_BENCH_REGION=region)
    if args.shift:
        env["CXR_BENCH_EDGE_SHIFT"] = args.shift
    if args.map_deform:
        env["CXR_BENCH_MAP_DEFORM"] = "1"
        env["CXR_BENCH_MAP_REFINE"] = str(args.map_refine)
    mapdir = os.path.join(tmp, f"maps_{region}")
    os.makedirs(mapdir, exist_ok=True)
    out = subprocess.run([f"{args.build}/bench/bench_diff", lst, mapdir], capture_output=True, text=True, env=env, check=True)
    res = [l.split() for l in out.stdout.strip().splitlines()]
    score = [float(r[3]) if r[3] != "nan" else float("nan") for r in res]
    if args.dump:
        with open(args.dump, "a", newline="") as fh:
            w = csv.writer(fh)
            for l, t, r in zip(lines, truth, res):
                w.writerow([region, *l.split()[:2], t[0], t[1], t[2] or "", t[3] or "", *(t[4] or ("", "")), r[3], r[8]])
    kinds_seen = collections.Counter(r[8] for r in res)
    print(f"\n## region {region} (mask kinds: {dict(kinds_seen)})")
    for st in sets:
        summary[(region, st)] = detection(score, truth, st, "change_score", UNIT)
    # where in the lungs: the largest zone's change score per px, and the
    # largest difference between the two lungs at one level (upper,
    # middle, lower) of the mean signed change: what a breath, a posture
    # or an exposure changes on both sides alike cancels there, what one
    # side gained does not
    zone = {"zone_max": [], "asymmetry": []}
    for r in res:
        z = np.array([float(v) for v in r[12:30]]).reshape(6, 3) if len(r) >= 30 else np.full((6, 3), np.nan)
        md, sc, area = z[:, 0], z[:, 1], z[:, 2]
        with np.errstate(invalid="ignore", divide="ignore"):
            per = np.where(area > 0, sc / area * 1e4, np.nan)
            asym = np.abs(md[:3] - md[3:])
        zone["zone_max"].append(float(np.nanmax(per)) if not np.all(np.isnan(per)) else float("nan"))
        zone["asymmetry"].append(float(np.nanmax(asym)) if not np.all(np.isnan(asym)) else float("nan"))
    for name, vals in zone.items():
        for st in sets:
            summary[(region, st, name)] = detection(vals, truth, st, f"{name} ({region})", UNIT)
half_table("change_score", [(f"{r} {s}", summary[(r, s)]) for r in REGIONS for s in sets])
half_table("zone signals of the maps", [(f"{n} {r} {s}", summary[(r, s, n)]) for r in REGIONS
                                         for n in ("zone_max", "asymmetry") for s in sets])
