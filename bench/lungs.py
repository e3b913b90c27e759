#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The lung segmenter, measured as users get it: cxrtrack's C runtime with
its post-processing (build/bench/bench_lungs), on the masks of
../shared/data/lungmasks and on the NIH films of series1024.

  - Dice per source on the held-out 20 % of each (the split of
    tools/train_lungs.py: by the SHA-256 of the file name; never trained on)
  - cross-hospital Dice: with --cross SOURCE=MODEL (models trained by
    tools/train_lungs.py --hold-out SOURCE), each on every film of the
    hospital it never saw
  - speed: ms per film on one thread, the network at its 256-px input and
    the whole segmentation (network and post-processing at the film's own
    size) for 256-px and 1024-px films, fastest of 5; against PyTorch on
    CPU (one thread) running the same network on the same input
  - NIH: how many of the 196 series1024 films get a plausible mask, and a
    contact sheet of 20 of them (out/lungs_contact.png), one film per
    patient, the mask's outline in green, to look at

Usage: bench/lungs.py [--model models/cxr-lungs.safetensors] [--build build]
                      [--cross shenzhen=M1 --cross montgomery=M2 --cross jsrt=M3]
"""
import csv, os, statistics, subprocess, sys, tempfile, time

import numpy as np
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import train_lungs  # noqa: E402

LM = os.path.join(ROOT, "..", "shared", "data", "lungmasks")
NIH = os.path.join(ROOT, "..", "shared", "data", "nih")


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def segment(bench, model, films, out, repeats=1):
    r = subprocess.run([bench, model, str(repeats), "--out", out] + films, check=True,
                       capture_output=True, text=True)
    rows = []
    for line in r.stdout.strip().splitlines():
        ms, net, status, q, rpx, lpx, name = line.split(" ", 6)
        rows.append({"ms": float(ms), "net": float(net), "status": status, "quality": float(q),
                     "file": name})
    return rows


def dice(a, b):
    a, b = a > 127, b > 127
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else 2 * (a & b).sum() / s


def evaluate(bench, model, rows):
    """Dice per source of @rows (source, file) against their masks."""
    out = tempfile.mkdtemp(prefix="cxr-lungs-")
    res = {}
    for src in train_lungs.SOURCES:
        films = [os.path.join(LM, s, "images", f) for s, f in rows if s == src]
        if not films:
            continue
        seg = segment(bench, model, films, out)
        ds, bad = [], 0
        for r in seg:
            m = np.asarray(Image.open(os.path.join(out, os.path.basename(r["file"]))).convert("L"))
            t = np.asarray(Image.open(r["file"].replace("/images/", "/masks/")).convert("L"))
            ds.append(dice(m, t))
            bad += r["status"] != "ok"
        res[src] = (np.array(ds), bad)
    return res


def report(title, res):
    print(title)
    print(f"  {'source':12s} {'films':>5s} {'Dice mean':>9s} {'median':>7s} {'min':>6s} {'implausible':>11s}")
    for src, (d, bad) in res.items():
        print(f"  {src:12s} {len(d):5d} {d.mean():9.4f} {np.median(d):7.4f} {d.min():6.3f} {bad:11d}")


def main():
    build = arg("--build", os.path.join(ROOT, "build"))
    model = arg("--model", os.path.join(ROOT, "models", "cxr-lungs.safetensors"))
    bench = os.path.join(build, "bench", "bench_lungs")
    subprocess.run(["sh", os.path.join(HERE, "machine.sh")])
    rows = [(r["source"], r["file"]) for r in csv.DictReader(open(os.path.join(LM, "masks.csv")))]
    held = [(s, f) for s, f in rows if train_lungs.held_out(f)]
    report(f"held-out films ({model}):", evaluate(bench, model, held))
    crosses = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--cross"]
    for c in crosses:
        src, path = c.split("=", 1)
        res = evaluate(bench, path, [(s, f) for s, f in rows if s == src])
        report(f"cross-hospital: trained without {src}, tested on all of it ({path}):", res)

    # speed, against PyTorch on the same network and input
    films1024 = sorted(os.path.join(NIH, "series1024", f) for f in os.listdir(os.path.join(NIH, "series1024")))
    films256 = [os.path.join(LM, s, "images", f) for s, f in held[:20]]
    out = tempfile.mkdtemp(prefix="cxr-lungs-")
    s256 = segment(bench, model, films256, out, repeats=5)
    s1024 = segment(bench, model, films1024[:20], out, repeats=5)
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import make_lung_fixtures  # noqa: E402
    net, meta = make_lung_fixtures.load_model(model)
    x = torch.randn(1, 1, 256, 256)
    with torch.no_grad():
        net(x)
        ts = []
        for _ in range(20):
            t0 = time.perf_counter()
            net(x)
            ts.append((time.perf_counter() - t0) * 1000)
    torch_ms = min(ts)
    c_net = min(r["net"] for r in s256)
    print(f"\nspeed, one thread (fastest of 5 per film, median over 20 films):")
    print(f"  network at 256 px:             C {statistics.median(r['net'] for r in s256):6.2f} ms"
          f"   PyTorch {torch_ms:6.2f} ms   ({torch_ms / c_net:.1f}x)")
    print(f"  whole segmentation, 256-px films:  {statistics.median(r['ms'] for r in s256):6.2f} ms")
    print(f"  whole segmentation, 1024-px films: {statistics.median(r['ms'] for r in s1024):6.2f} ms")

    # NIH films: plausibility, and the contact sheet
    seg = segment(bench, model, films1024, out)
    bad = [r for r in seg if r["status"] != "ok"]
    print(f"\nNIH series1024: {len(seg) - len(bad)} of {len(seg)} films plausible; "
          f"quality median {statistics.median(r['quality'] for r in seg):.3f}")
    for r in bad:
        print(f"  implausible: {os.path.basename(r['file'])} (quality {r['quality']:.2f})")
    firsts, seen = [], set()
    for f in films1024:
        pid = os.path.basename(f).split("_")[0]
        if pid not in seen:
            seen.add(pid)
            firsts.append(f)
    firsts = firsts[:20]
    sheet = Image.new("RGB", (5 * 256, 4 * 276), "white")
    by = {os.path.basename(r["file"]): r for r in seg}
    for k, f in enumerate(firsts):
        name = os.path.basename(f)
        im = Image.open(f).convert("L").resize((256, 256), Image.BILINEAR).convert("RGB")
        m = np.asarray(Image.open(os.path.join(out, name)).convert("L").resize((256, 256), Image.NEAREST)) > 127
        edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
        a = np.asarray(im).copy()
        a[edge] = (40, 210, 60)
        x, y = (k % 5) * 256, (k // 5) * 276
        sheet.paste(Image.fromarray(a), (x, y))
        r = by[name]
        ImageDraw.Draw(sheet).text((x + 4, y + 258), f"{name} {r['status']} q{r['quality']:.2f}", fill="black")
    os.makedirs(os.path.join(ROOT, "out"), exist_ok=True)
    path = os.path.join(ROOT, "out", "lungs_contact.png")
    sheet.save(path)
    print(f"contact sheet: {path}")


if __name__ == "__main__":
    main()
