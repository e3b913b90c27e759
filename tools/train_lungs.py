#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Train cxrtrack's lung-field segmenter (architecture cxr-lungnet) on the
766 masked films of ../shared/data/lungmasks, and export it for the C
runtime (src/nn/lungs.c).

  /usr/bin/python3 tools/train_lungs.py [--epochs 40] [--out models/cxr-lungs.safetensors]
  /usr/bin/python3 tools/train_lungs.py --hold-out jsrt --out /tmp/x.safetensors   # cross-hospital

Data: Shenzhen (465), Montgomery (106) and JSRT (195) films with both lung
fields masked (the Montgomery / SCR convention: the lung behind the heart
and below the diaphragm's dome is not lung). Each film and mask is
squashed to 256 x 256 (as cxrtrack squashes a film for the network; the
JSRT 224-px films are resized). Split: per source, by the SHA-256 of the
file name, 20 % held out for testing; never trained on. With --hold-out
SOURCE, that whole source is left out of training (the cross-hospital
test: does the model work on a hospital it has not seen?).

Model: a small U-Net (Ronneberger et al., MICCAI 2015) that works at half
the input resolution: a stride-2 3x3 convolution, then encoder levels at
128, 64, 32 and 16 px (two 3x3 convolutions each, batch norm and ReLU,
2x2 max pooling between), a decoder that doubles the size bilinearly,
concatenates the skip and applies one 3x3 convolution per level, a 1x1
convolution to one logit at 128 px and a bilinear doubling to 256 px. The
mask's edge is smooth at that scale; the compute is a quarter of a
full-resolution U-Net's, so that it trains here in minutes and runs in
milliseconds in C.

Training: Adam, cosine learning rate, batch 8, loss BCE + soft Dice;
augmentation for unseen hospitals (NIH films are AP and PA, with wires,
tubes, rotated and collimated): rotation +-10 degrees, scale 0.85-1.15,
shift +-8 %, gain, gamma and blur, noise, random black borders; then
every film histogram-equalised (equalize(), as the C runtime does when the
model's metadata says input_equalize = histogram; --no-equalize for the
version-1 recipe). Fixed seeds; PyTorch on CPU (Debian python3-torch),
2 threads.

Prints per source the held-out Dice (mean, min), writes the weights (F32)
with metadata, and the held-out list (--split-out).
"""
import argparse, csv, hashlib, json, math, os, random, struct, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "lungmasks")
SIZE = 256
MEAN, STD = 0.5, 0.25
SOURCES = ("shenzhen", "montgomery", "jsrt")
WIDTHS = (12, 24, 48, 96)  # channels at 128, 64, 32, 16 px


def held_out(name):
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 5 == 0


def load():
    rows = list(csv.DictReader(open(os.path.join(D, "masks.csv"))))
    out = []
    for r in rows:
        img = Image.open(os.path.join(D, r["source"], "images", r["file"])).convert("L")
        msk = Image.open(os.path.join(D, r["source"], "masks", r["file"])).convert("L")
        if img.size != (SIZE, SIZE):
            img = img.resize((SIZE, SIZE), Image.BILINEAR)
            msk = msk.resize((SIZE, SIZE), Image.BILINEAR)
        x = np.asarray(img, np.float32) / 255
        y = (np.asarray(msk, np.float32) >= 128).astype(np.float32)
        out.append((r["source"], r["file"], x, y))
    return out


def conv_bn(ci, co, stride=1):
    return nn.Sequential(nn.Conv2d(ci, co, 3, stride, 1, bias=False), nn.BatchNorm2d(co),
                         nn.ReLU(inplace=True))


class LungNet(nn.Module):
    """Tensor names are the ones src/nn/lungs.c reads."""

    def __init__(self, w=WIDTHS):
        super().__init__()
        self.stem = conv_bn(1, w[0], 2)
        self.enc0 = conv_bn(w[0], w[0])
        self.enc1 = nn.Sequential(conv_bn(w[0], w[1]), conv_bn(w[1], w[1]))
        self.enc2 = nn.Sequential(conv_bn(w[1], w[2]), conv_bn(w[2], w[2]))
        self.enc3 = nn.Sequential(conv_bn(w[2], w[3]), conv_bn(w[3], w[3]))
        self.dec2 = conv_bn(w[3] + w[2], w[2])
        self.dec1 = conv_bn(w[2] + w[1], w[1])
        self.dec0 = conv_bn(w[1] + w[0], w[0])
        self.head = nn.Conv2d(w[0], 1, 1)

    def forward(self, x):
        s0 = self.enc0(self.stem(x))                 # 128
        s1 = self.enc1(F.max_pool2d(s0, 2))          # 64
        s2 = self.enc2(F.max_pool2d(s1, 2))          # 32
        b = self.enc3(F.max_pool2d(s2, 2))           # 16
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
        d2 = self.dec2(torch.cat([up(b), s2], 1))
        d1 = self.dec1(torch.cat([up(d2), s1], 1))
        d0 = self.dec0(torch.cat([up(d1), s0], 1))
        return up(self.head(d0))                     # logits at 256


def augment(x, y, g):
    """A batch (n, 1, H, W) re-posed and re-exposed; y the same geometry."""
    n = x.shape[0]
    ang = (torch.rand(n, generator=g) * 2 - 1) * math.radians(10)
    sc = 0.85 + torch.rand(n, generator=g) * 0.3
    tx, ty = [(torch.rand(n, generator=g) * 2 - 1) * 0.16 for _ in range(2)]
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
    y = F.grid_sample(y, grid, padding_mode="zeros", align_corners=False)
    gain = 0.8 + torch.rand(n, 1, 1, 1, generator=g) * 0.4
    gamma = 0.7 + torch.rand(n, 1, 1, 1, generator=g) * 0.6
    x = (x.clamp(0, 1) ** gamma) * gain
    blur = torch.rand(n, generator=g) < 0.3
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0]) / 4
        k2 = (k[:, None] * k[None, :])[None, None]
        x[blur] = F.conv2d(x[blur], k2, padding=1)
    x = x + torch.randn(x.shape, generator=g) * (torch.rand(n, 1, 1, 1, generator=g) * 0.03)
    # black borders, as collimation leaves them
    for i in range(n):
        if torch.rand(1, generator=g).item() < 0.3:
            side = int(torch.randint(0, 4, (1,), generator=g))
            k = int(torch.randint(4, 32, (1,), generator=g))
            if side == 0:
                x[i, :, :k] = 0
            elif side == 1:
                x[i, :, -k:] = 0
            elif side == 2:
                x[i, :, :, :k] = 0
            else:
                x[i, :, :, -k:] = 0
    return x.clamp(0, 1.2), (y > 0.5).float()


def equalize(x):
    """Histogram equalisation of a film in [0, 1], exactly as src/nn/lungs.c
    does it: 256 levels (round(255 x), clamped), each level mapped to the
    share of the film's pixels at or below it, counted from the lowest
    level present (which maps to 0) to 1. The network then sees the same
    spread of grey whatever the film's contrast: the hazy, flat portable
    films of ICU patients, where a screening-trained network lost whole
    lungs, look like the films it learnt from."""
    q = np.clip(np.floor(np.asarray(x, np.float64) * 255 + 0.5), 0, 255).astype(np.int64)
    h = np.bincount(q.ravel(), minlength=256)
    c = np.cumsum(h)
    low = c[np.flatnonzero(h)[0]]
    lut = (c - low) / max(q.size - low, 1)
    return lut[q].astype(np.float32)


def equalize_batch(x):
    return torch.tensor(np.stack([equalize(v) for v in x.numpy()]))


def dice(p, y):
    inter = (p * y).sum((1, 2, 3))
    return (2 * inter + 1) / (p.sum((1, 2, 3)) + y.sum((1, 2, 3)) + 1)


def evaluate(model, data, eq=True):
    model.eval()
    out = {}
    with torch.no_grad():
        for i in range(0, len(data), 16):
            chunk = data[i:i + 16]
            x = torch.tensor(np.stack([c[2] for c in chunk]))[:, None]
            if eq:
                x = equalize_batch(x)
            y = torch.tensor(np.stack([c[3] for c in chunk]))[:, None]
            p = (torch.sigmoid(model((x - MEAN) / STD)) > 0.5).float()
            for c, d in zip(chunk, dice(p, y).tolist()):
                out.setdefault(c[0], []).append(d)
    return out


def export(model, path, meta):
    model.eval()
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items() if "num_batches" not in k}
    header, offset, blobs = {"__metadata__": meta}, 0, []
    for name, arr in sd.items():
        b = np.ascontiguousarray(arr.astype("<f4")).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--hold-out", choices=SOURCES, default=None)
    ap.add_argument("--out", default="models/cxr-lungs.safetensors")
    ap.add_argument("--split-out", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="films per epoch (timing runs)")
    ap.add_argument("--no-equalize", action="store_true",
                    help="the film's own grey levels in, as models before version 2")
    a = ap.parse_args()
    torch.manual_seed(2024)
    random.seed(2024)
    np.random.seed(2024)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    data = load()
    train = [d for d in data if not held_out(d[1]) and d[0] != a.hold_out]
    test = [d for d in data if held_out(d[1]) or d[0] == a.hold_out]
    print(f"{len(data)} films: {len(train)} to train on, {len(test)} to test"
          + (f" (all of {a.hold_out})" if a.hold_out else ""), flush=True)
    model = LungNet()
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    X = torch.tensor(np.stack([d[2] for d in train]))[:, None]
    Y = torch.tensor(np.stack([d[3] for d in train]))[:, None]
    g = torch.Generator().manual_seed(7)
    n = len(train) if not a.limit else min(a.limit, len(train))
    steps = a.epochs * math.ceil(n / 8)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    for ep in range(a.epochs):
        model.train()
        perm = torch.randperm(len(train), generator=g)[:n]
        tl = 0.0
        for i in range(0, n, 8):
            idx = perm[i:i + 8]
            x, y = augment(X[idx], Y[idx], g)
            if not a.no_equalize:
                x = equalize_batch(x)
            logit = model((x - MEAN) / STD)
            p = torch.sigmoid(logit)
            loss = F.binary_cross_entropy_with_logits(logit, y) + (1 - dice(p, y)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tl += loss.item() * len(idx)
        print(f"epoch {ep + 1}: loss {tl / n:.4f} ({time.time() - t0:.0f} s)", flush=True)
    res = evaluate(model, test, not a.no_equalize)
    for s in SOURCES:
        if s in res:
            v = np.array(res[s])
            print(f"held-out Dice {s}: mean {v.mean():.4f}, min {v.min():.4f}, n {len(v)}")
    meta = {"architecture": "cxr-lungnet", "name": "cxr-lungs", "input_size": str(SIZE),
            "input_mean": str(MEAN), "input_std": str(STD), "widths": ",".join(map(str, WIDTHS)),
            "classes": "lung", "resize": "area", "version": "1" if a.no_equalize else "2",
            "input_equalize": "none" if a.no_equalize else "histogram",
            "source": "tools/train_lungs.py on lungmasks (Shenzhen, Montgomery, JSRT); "
                      "Shenzhen masks CC BY-NC-SA 4.0: see models/LUNGS_CARD.md",
            "held_out": a.hold_out or "", "epochs": str(a.epochs)}
    export(model, a.out, meta)
    if a.split_out:
        with open(a.split_out, "w") as f:
            for d in test:
                f.write(f"{d[0]},{d[1]}\n")
    print(f"wrote {a.out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
