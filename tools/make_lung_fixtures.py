#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Reference outputs from PyTorch for the lung segmenter's C runtime
(tests/test_lungs.c), so that C and PyTorch can be compared to 1e-4:

  tests/data/model/lungs_layers.json   max pooling and bilinear doubling
                                       (align_corners=False) of a random map
  tests/data/model/lungnet_tiny.safetensors + lungnet_tiny.json
                                       a LungNet of tiny widths with random
                                       weights and batch-norm statistics, and
                                       its probabilities on a 64-px pattern
  tests/data/model/lungs_real.json     the shipped models/cxr-lungs.safetensors
                                       on two NIH films of tests/data/lungs/
                                       (its input, equalised as its metadata
                                       says, and probabilities at 2,048
                                       pixels each)

  /usr/bin/python3 tools/make_lung_fixtures.py     (after training a new model)
"""
import json, os, sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import train_lungs  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "model")


def load_model(path):
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8:8 + n])
    meta = hdr.pop("__metadata__")
    widths = tuple(int(w) for w in meta["widths"].split(","))
    m = train_lungs.LungNet(widths)
    sd = {}
    for k, v in hdr.items():
        a, b = v["data_offsets"]
        sd[k] = torch.tensor(np.frombuffer(raw[8 + n + a:8 + n + b], "<f4").reshape(v["shape"]).copy())
    m.load_state_dict(sd, strict=False)
    return m.eval(), meta


def main():
    torch.manual_seed(5)
    x = torch.randn(1, 3, 6, 6)
    layers = {"input": x.flatten().tolist(), "c": 3, "n": 6,
              "pool": F.max_pool2d(x, 2).flatten().tolist(),
              "up": F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).flatten().tolist()}
    json.dump(layers, open(os.path.join(OUT, "lungs_layers.json"), "w"))

    # a tiny LungNet, every batch norm with its own statistics
    w = (3, 4, 5, 6)
    m = train_lungs.LungNet(w)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if "num_batches" in name:
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith("running_mean") or name.endswith("bias"):
                t.copy_((torch.rand(t.shape, generator=g) - 0.5) * 0.4)
            elif name.endswith(".weight") and t.dim() == 1:
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            else:
                t.copy_((torch.rand(t.shape, generator=g) - 0.5) * 2 / np.sqrt(t[0].numel()))
    m.eval()
    size = 64
    yy, xx = np.mgrid[0:size, 0:size]
    img = (0.5 + 0.4 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.float32)
    meta = {"architecture": "cxr-lungnet", "name": "lungnet-tiny", "input_size": str(size),
            "input_mean": "0.5", "input_std": "0.25", "widths": ",".join(map(str, w)), "classes": "lung"}
    train_lungs.export(m, os.path.join(OUT, "lungnet_tiny.safetensors"), meta)
    with torch.no_grad():
        p = torch.sigmoid(m(torch.tensor((img - 0.5) / 0.25)[None, None]))[0, 0].numpy()
    json.dump({"input": img.flatten().tolist(), "prob": p.flatten().tolist()},
              open(os.path.join(OUT, "lungnet_tiny.json"), "w"))

    # the shipped model on two real films (already 256 x 256: no resizing)
    shipped = os.path.join(ROOT, "models", "cxr-lungs.safetensors")
    if not os.path.exists(shipped):
        print("no", shipped, "yet: lungs_real.json not written")
        return
    model, meta = load_model(shipped)
    mean, std = float(meta["input_mean"]), float(meta["input_std"])
    rng = np.random.default_rng(3)
    idx = rng.choice(256 * 256, 2048, replace=False)
    films = []
    for name in sorted(os.listdir(os.path.join(ROOT, "tests", "data", "lungs"))):
        im = np.asarray(Image.open(os.path.join(ROOT, "tests", "data", "lungs", name)).convert("L"),
                        np.float32) / 255
        if meta.get("input_equalize", "none") == "histogram":
            im = train_lungs.equalize(im)
        x = ((im - mean) / std).astype(np.float32)
        with torch.no_grad():
            p = torch.sigmoid(model(torch.tensor(x)[None, None]))[0, 0].numpy().flatten()
        films.append({"file": name, "index": idx.tolist(), "prob": p[idx].tolist(),
                      "input": x.flatten()[idx].tolist(), "mean": float(p.mean())})
    json.dump({"films": films}, open(os.path.join(OUT, "lungs_real.json"), "w"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
