#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Train cxrtrack's default classifier (architecture cxr-densenet-small) on
the real NIH films in ../shared/data/nih, and export it for the C runtime.

  /usr/bin/python3 tools/train.py [--epochs 16] [--out models/cxr-default.safetensors]

Data: train256/ (1,251 films, 256x256) with labels from images.csv.
Split: by patient (sha256 of the patient id, 20 % held out: no patient in
both). Targets: the 14 findings, multi-label; where
chexnet_reference_preds.csv has the film, the target is the mean of the
label and the CheXNet probability (distillation). Augmentation: rotation
+-5 degrees, shift +-5 %, scale 0.93-1.07, gain 0.9-1.1, gamma 0.85-1.15,
so that the embedding is stable across the pose and exposure of real
visits. Fixed seeds; PyTorch on CPU (Debian python3-torch), 2 threads.
Writes the weights (F16), the held-out split and PyTorch's held-out
probabilities (models/heldout_torch.csv) for tools/evaluate.py.
"""
import argparse, csv, hashlib, math, os, random, sys, time

import cv2
import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
import export_safetensors  # noqa: E402

D = "../shared/data/nih"
CLASSES = export_safetensors.NIH14.split("|")
SIZE = 256
MEAN, STD = 0.5, 0.25


def held_out(pid):
    return int(hashlib.sha256(pid.encode()).hexdigest(), 16) % 5 == 0


def load():
    rows = list(csv.DictReader(open(f"{D}/images.csv")))
    ref = {r["Image Index"]: [float(r["prob_" + c]) for c in CLASSES]
           for r in csv.DictReader(open(f"{D}/chexnet_reference_preds.csv"))}
    out = []
    for r in rows:
        img = cv2.imread(f"{D}/train256/{r['Image Index']}", cv2.IMREAD_GRAYSCALE)
        y = np.array([c in r["Finding Labels"].split("|") for c in CLASSES], np.float32)
        soft = y.copy()
        if r["Image Index"] in ref:
            soft = 0.5 * y + 0.5 * np.array(ref[r["Image Index"]], np.float32)
        out.append((r, img.astype(np.float32) / 255, y, soft))
    return out


def augment(img, rng):
    h, w = img.shape
    ang = rng.uniform(-5, 5)
    sc = rng.uniform(0.93, 1.07)
    tx, ty = rng.uniform(-0.05, 0.05) * w, rng.uniform(-0.05, 0.05) * h
    M = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), ang, sc)
    M[:, 2] += (tx, ty)
    out = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = np.clip(out, 0, 1) ** rng.uniform(0.85, 1.15) * rng.uniform(0.9, 1.1)
    return np.clip(out, 0, 1)


def model():
    m = torchvision.models.DenseNet(growth_rate=16, block_config=(3, 6, 12, 8), num_init_features=32,
                                    bn_size=4, num_classes=len(CLASSES))
    m.features.conv0 = torch.nn.Conv2d(1, 32, kernel_size=7, stride=2, padding=3, bias=False)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--out", default="models/cxr-default.safetensors")
    ap.add_argument("--exclude-patients", metavar="FILE",
                    help="patient ids (one a line) neither trained on nor held out: e.g. the dev "
                         "follow-up series, for a model that never saw them")
    ap.add_argument("--heldout-out", default="models/heldout_torch.csv")
    ap.add_argument("--seed", type=int, default=0, help="of the weights' initialisation and the batches")
    a = ap.parse_args()
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)
    t0 = time.time()
    data = load()
    if a.exclude_patients:
        leave = {l.strip().lstrip("0") for l in open(a.exclude_patients) if l.strip()}
        n0 = len(data)
        data = [d for d in data if d[0]["Patient ID"].lstrip("0") not in leave]
        print(f"left out {n0 - len(data)} films of the {len(leave)} patients in {a.exclude_patients}")
    train = [d for d in data if not held_out(d[0]["Patient ID"])]
    test = [d for d in data if held_out(d[0]["Patient ID"])]
    assert not ({d[0]["Patient ID"] for d in train} & {d[0]["Patient ID"] for d in test})
    print(f"{len(train)} training films, {len(test)} held-out films "
          f"({len({d[0]['Patient ID'] for d in test})} patients)", flush=True)
    # channels_last: oneDNN's NHWC convolutions train this model about twice
    # as fast on CPU as the default NCHW layout (4.0 -> 2.2 s per batch here)
    m = model().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = a.epochs * math.ceil(len(train) / 32)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.15)
    rng = random.Random(1 + a.seed)
    bce = torch.nn.BCEWithLogitsLoss()
    for ep in range(a.epochs):
        m.train()
        rng.shuffle(train)
        tot = 0
        for i in range(0, len(train), 32):
            b = train[i:i + 32]
            x = torch.from_numpy(np.stack([(augment(d[1], rng) - MEAN) / STD for d in b])[:, None].astype(np.float32))
            x = x.contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(np.stack([d[3] for d in b]))
            loss = bce(m(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(b)
        print(f"epoch {ep + 1}/{a.epochs}: loss {tot / len(train):.4f} ({time.time() - t0:.0f} s)", flush=True)
    m.eval()
    train_s = time.time() - t0
    with torch.no_grad():
        x = torch.from_numpy(np.stack([(d[1] - MEAN) / STD for d in test])[:, None].astype(np.float32))
        p = torch.sigmoid(m(x.contiguous(memory_format=torch.channels_last))).numpy()
    with open(a.heldout_out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Image Index", "Patient ID"] + ["prob_" + c for c in CLASSES])
        for d, pr in zip(test, p):
            w.writerow([d[0]["Image Index"], d[0]["Patient ID"]] + [f"{v:.7f}" for v in pr])
    sd = {k: v.contiguous().numpy() for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
    meta = {"architecture": "cxr-densenet-small", "input_size": str(SIZE), "classes": "|".join(CLASSES),
            "input_mean": str(MEAN), "input_std": str(STD), "resize": "area", "version": "1",
            "name": "cxr-default", "source": "tools/train.py on ../shared/data/nih/train256 (NIH ChestX-ray14)",
            "training_seconds": f"{train_s:.0f}", "epochs": str(a.epochs), "seed": str(a.seed)}
    if a.exclude_patients:
        meta["excluded_patients"] = str(len(leave))
    # F32 for the parity check: F16 would change the outputs by ~1e-3
    export_safetensors.write(a.out, sd, meta, False)
    n = sum(v.size for v in sd.values())
    print(f"wrote {a.out}: {n} parameters; training took {train_s:.0f} s on "
          f"{torch.get_num_threads()} threads", flush=True)


if __name__ == "__main__":
    main()
