#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""PyTorch reference outputs for the C classifier runtime (tests/test_model.c).

For each architecture (torchvision DenseNet-121, and cxrtrack's small
DenseNet), weights are not stored: every value is a function of the tensor's
name and the element's index (FNV-1a of the name, a counter hash per
element; tests/test_model.c implements the same), so the fixture holds only
the tensor names and shapes, two inputs and PyTorch's outputs: sigmoid
probabilities, the embedding (global average of the rectified features) and
the class activation maps. DenseNet-121 runs at 64x64 to keep it small.

Run from the repository root: /usr/bin/python3 tools/make_model_fixtures.py
"""
import json
import math

import numpy as np
import torch
import torchvision

CLASSES = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
           "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
           "Hernia"]


def fnv1a(s):
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def unif(name, n):
    """n floats in [0, 1) from the name: the same numbers as unif() in test_model.c."""
    i = np.arange(n, dtype=np.uint64)
    x = (np.uint64(fnv1a(name)) ^ ((i * np.uint64(0x9E3779B9)) & np.uint64(0xFFFFFFFF))).astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return (x >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)


def value(name, shape):
    n = int(np.prod(shape)) if shape else 1
    f = unif(name, n)
    one, two = np.float32(1), np.float32(2)
    if name.endswith("running_var") or (name.endswith(".weight") and len(shape) == 1):
        v = np.float32(0.5) + f
    elif name.endswith("bias") or name.endswith("running_mean"):
        v = (two * f - one) * np.float32(0.1)
    else:  # conv and linear weights: He uniform
        fan_in = int(np.prod(shape[1:]))
        v = (two * f - one) * np.float32(math.sqrt(6.0 / fan_in))
    return v.astype(np.float32).reshape(shape)


def build(arch):
    if arch == "densenet121":
        m = torchvision.models.densenet121(weights=None, num_classes=len(CLASSES))
        size, ch = 64, 3
    else:
        m = torchvision.models.DenseNet(growth_rate=16, block_config=(3, 6, 12, 8), num_init_features=32,
                                        bn_size=4, num_classes=len(CLASSES))
        m.features.conv0 = torch.nn.Conv2d(1, 32, kernel_size=7, stride=2, padding=3, bias=False)
        size, ch = 64, 1
    sd = {k: v for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
    m.load_state_dict({k: torch.from_numpy(value(k, list(v.shape))) for k, v in sd.items()}, strict=False)
    m.eval()
    return m, sd, size, ch


def main():
    torch.manual_seed(0)
    for arch in ["densenet121", "cxr-densenet-small"]:
        m, sd, size, ch = build(arch)
        g = torch.Generator().manual_seed(1)
        inputs = torch.randn(2, ch, size, size, generator=g)
        with torch.no_grad():
            feats = torch.relu(m.features(inputs))
            emb = feats.mean(dim=(2, 3))
            logits = m.classifier(emb)
            prob = torch.sigmoid(logits)
            cam = torch.einsum("ck,nkyx->ncyx", m.classifier.weight, feats) + m.classifier.bias[None, :, None, None]
            assert torch.allclose(prob, torch.sigmoid(m(inputs)), atol=1e-6)
        fx = {
            "architecture": arch, "input_size": size, "channels": ch, "classes": CLASSES,
            "tensors": [[k, list(v.shape)] for k, v in sd.items()],
            "inputs": [x.flatten().tolist() for x in inputs],
            "probability": prob.tolist(), "embedding": emb.tolist(),
            "cam": [c.flatten().tolist() for c in cam], "cam_size": list(cam.shape[2:]),
            "torch": torch.__version__,
        }
        path = f"tests/data/model/{arch}.json"
        with open(path, "w") as f:
            json.dump(fx, f, separators=(",", ":"))
        print(path, len(sd), "tensors, probabilities", [round(p, 4) for p in prob[0, :4].tolist()])


if __name__ == "__main__":
    main()
