#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Classifier inference speed: cxrtrack's C runtime against PyTorch on CPU,
same architecture, same input size, batch of one image, threads matched.

  DenseNet-121 at 224x224 (3 channels), and the default model
  (cxr-densenet-small at 256x256, 1 channel, models/cxr-default.safetensors).
For the C runtime, 2 threads are used two ways: inside the matrix products
(OpenBLAS) or across images (one image per thread); the better is the
figure to compare. Peak memory is each process's maximum RSS.

This workplace sets OPENBLAS_CORETYPE=Haswell (AVX2 kernels) for old
OpenBLAS builds; the C runtime is measured both with it and with OpenBLAS's
own CPU dispatch (both variables unset, for the C process alone; the
parity test passes with either). PyTorch convolutions run on oneDNN and are
not affected.

Each figure is the median of 3 rounds in which PyTorch and the C runtime
alternate (the range is given too).

Usage: bench/model.py [N images, default 40] [build dir]
"""
import os, resource, subprocess, sys, tempfile, time

import numpy as np
import torch
import torchvision

sys.path.insert(0, "tools")
import export_safetensors  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 40
ROUNDS = 3
B = sys.argv[2] if len(sys.argv) > 2 else "build"
subprocess.run(["sh", "bench/machine.sh"])
print(f"torch {torch.__version__}; {N} images per measurement")
tmp = tempfile.mkdtemp()


def small():
    m = torchvision.models.DenseNet(growth_rate=16, block_config=(3, 6, 12, 8), num_init_features=32,
                                    bn_size=4, num_classes=14)
    m.features.conv0 = torch.nn.Conv2d(1, 32, kernel_size=7, stride=2, padding=3, bias=False)
    return m


cases = [("densenet121", torchvision.models.densenet121(weights=None, num_classes=14), 224, 3),
         ("cxr-densenet-small", small(), 256, 1)]
for arch, m, size, ch in cases:
    path = os.path.join(tmp, arch + ".safetensors")
    sd = {k: v.numpy() for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
    export_safetensors.write(path, sd, {"architecture": arch, "input_size": str(size),
                                        "classes": export_safetensors.NIH14}, False)
    m.eval()
    x = torch.randn(1, ch, size, size)
    print(f"\n{arch} at {size}x{size}:")
    envs = (("OPENBLAS_CORETYPE as set here", dict(os.environ)),
            ("OpenBLAS's own dispatch", {k: v for k, v in os.environ.items()
                                         if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}))
    for threads in (1, 2):
        torch.set_num_threads(threads)
        # ROUNDS rounds, PyTorch and the C runtime alternating, medians
        # compared: this virtual machine's speed drifts by up to 1.5x
        # over minutes, which one measurement of each would mistake for
        # a difference between them.
        torch_r, c_r = [], {label: [] for label, _ in envs}
        for _ in range(ROUNDS):
            with torch.no_grad():
                m(x)
                t0 = time.perf_counter()
                for _ in range(N):
                    m(x)
                torch_r.append(N / (time.perf_counter() - t0))
            for label, env in envs:
                res = {}
                for mode in (["gemm"] if threads == 1 else ["gemm", "images"]):
                    out = subprocess.run([f"{B}/bench/bench_model", path, str(N), str(threads), mode], env=env,
                                         capture_output=True, text=True, check=True).stdout.split()
                    res[mode] = (float(out[0]), float(out[1]))
                best = max(res, key=lambda k: res[k][0])
                c_r[label].append((res[best][0], best, res[best][1]))
        torch_ips = float(np.median(torch_r))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        line = (f"  {threads} thread(s): PyTorch {torch_ips:.1f} images/s (median of {ROUNDS}; "
                f"{min(torch_r):.1f}-{max(torch_r):.1f}; process peak {rss:.0f} MB)")
        for label, _ in envs:
            v = [r[0] for r in c_r[label]]
            med = float(np.median(v))
            mode = max(set(r[1] for r in c_r[label]), key=[r[1] for r in c_r[label]].count)
            peak = max(r[2] for r in c_r[label])
            line += (f" | cxrtrack, {label}: {med:.1f} images/s ({min(v):.1f}-{max(v):.1f}; {mode}; peak {peak:.0f} MB)"
                     f" = {med / torch_ips:.2f}x")
        print(line)
