#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""One comparison as a radiologist's workstation or a PACS hook asks for
it: a fresh `cxrtrack register FIXED MOVING --out W.png --format json`
process (decode both films, load the lung segmenter, find both films'
lung fields, the global and the deformable stage, write the warped film),
against elastix 5.0.1 affine then affine + B-spline (bench/elastix/*.txt,
one thread) on the same pairs, in the same run. CPU time per call (user +
sys of the child process), median over the pairs, and the ratio.

Pairs: the first consecutive same-view pair of each of the first N
patients of ../shared/data/nih/series1024 with one (default 10), 1024 px.

Usage: bench/register_call.py [build dir] [--pairs N] [--repeat K] [--no-elastix]
"""
import os, resource, subprocess, sys, tempfile

import nih_series

B = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "build"
N = int(sys.argv[sys.argv.index("--pairs") + 1]) if "--pairs" in sys.argv else 10
K = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
ELASTIX = "--no-elastix" not in sys.argv
D = "../shared/data/nih/series1024"
subprocess.run(["sh", "bench/machine.sh"])

pairs = []
for pid, films in sorted(nih_series.series().items()):
    for a, b in zip(films, films[1:]):
        if a["View Position"] == b["View Position"]:
            pairs.append((f"{D}/{a['Image Index']}", f"{D}/{b['Image Index']}"))
            break
pairs = pairs[:N]
T = tempfile.mkdtemp(prefix="cxr-call-")


def cpu_of(cmd):
    t0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (t1.ru_utime + t1.ru_stime) - (t0.ru_utime + t0.ru_stime)


def median(v):
    v = sorted(v)
    return (v[len(v) // 2] + v[(len(v) - 1) // 2]) / 2


# the fastest of K calls per pair (the first one also reads the files
# from disk), then the median over pairs
ours = [min(cpu_of([f"{B}/src/cxrtrack", "register", a, b, "--out", f"{T}/w.png", "--format",
                    "json"]) for _ in range(K)) for a, b in pairs]
print(f"{len(pairs)} pairs, 1024 px; CPU per call, median (fastest of {K} per pair):")
print(f"  cxrtrack register (lungs, deformable, warped film written): {1000 * median(ours):.0f} ms"
      f" (range {1000 * min(ours):.0f}-{1000 * max(ours):.0f})")
if ELASTIX:
    theirs = []
    for a, b in pairs:
        d = tempfile.mkdtemp(dir=T)
        theirs.append(cpu_of(["elastix", "-f", a, "-m", b, "-p", "bench/elastix/affine.txt", "-p",
                              "bench/elastix/bspline.txt", "-out", d, "-threads", "1"]))
    print(f"  elastix affine + B-spline, one thread: {median(theirs):.2f} s"
          f" (range {min(theirs):.2f}-{max(theirs):.2f})")
    print(f"  ratio (elastix / cxrtrack): {median(theirs) / median(ours):.1f}x (target 50x)")
