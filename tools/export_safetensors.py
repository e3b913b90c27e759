#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Convert a PyTorch DenseNet checkpoint to cxrtrack's safetensors.

Accepts a state_dict or a checkpoint holding one ('state_dict', 'model',
'model_state_dict'), or a whole pickled module (torchxrayvision models):
  - CheXNet re-implementations: keys 'module.densenet121.features...' and
    'module.densenet121.classifier.0.weight' (a Sequential(Linear, Sigmoid))
  - torchvision / torchxrayvision DenseNet-121: 'features...', 'classifier...'
  - old torchvision names 'norm.1', 'conv.2' (before torchvision 0.3)
num_batches_tracked buffers are dropped; everything else must be a tensor
cxrtrack's architecture has (checked again when cxrtrack loads the file).

  tools/export_safetensors.py model.pth.tar out.safetensors \\
      --architecture densenet121 --input-size 224 \\
      --classes 'Atelectasis|Cardiomegaly|...' --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225

Writes F32 (or F16 with --f16). Needs Debian's python3-torch.
"""
import argparse
import json
import re
import struct
import sys

import numpy as np
import torch

NIH14 = ("Atelectasis|Cardiomegaly|Effusion|Infiltration|Mass|Nodule|Pneumonia|Pneumothorax|"
         "Consolidation|Edema|Emphysema|Fibrosis|Pleural_Thickening|Hernia")


def state_dict_of(obj):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and key in obj:
            return state_dict_of(obj[key])
    return obj


def rename(key):
    key = re.sub(r"^(module\.)?(densenet121\.|model\.)?", "", key)
    key = re.sub(r"^classifier\.0\.", "classifier.", key)          # CheXNet: Sequential(Linear, Sigmoid)
    key = re.sub(r"\.(norm|relu|conv)\.([0-9])", r".\1\2", key)     # torchvision < 0.3
    return key


def write(path, tensors, metadata, f16):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr.astype("<f2" if f16 else "<f4"))
        b = arr.tobytes()
        header[name] = {"dtype": "F16" if f16 else "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    ap.add_argument("--architecture", default="densenet121")
    ap.add_argument("--input-size", default="224")
    ap.add_argument("--classes", default=NIH14)
    ap.add_argument("--mean", default="0.485,0.456,0.406")
    ap.add_argument("--std", default="0.229,0.224,0.225")
    ap.add_argument("--name", default=None)
    ap.add_argument("--version", default="1")
    ap.add_argument("--source", default="")
    ap.add_argument("--f16", action="store_true")
    a = ap.parse_args()
    obj = torch.load(a.checkpoint, map_location="cpu", weights_only=False) if "weights_only" in \
        torch.load.__code__.co_varnames else torch.load(a.checkpoint, map_location="cpu")
    sd = state_dict_of(obj)
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked") or not torch.is_tensor(v):
            continue
        out[rename(k)] = v.detach().float().numpy()
    n_classes = len(a.classes.split("|"))
    if out.get("classifier.weight") is not None and out["classifier.weight"].shape[0] != n_classes:
        sys.exit(f"classifier has {out['classifier.weight'].shape[0]} outputs but --classes names {n_classes}")
    meta = {"architecture": a.architecture, "input_size": str(a.input_size), "classes": a.classes,
            "input_mean": a.mean, "input_std": a.std, "resize": "area", "version": a.version,
            "name": a.name or a.architecture, "source": a.source}
    write(a.output, out, meta, a.f16)
    print(f"{a.output}: {len(out)} tensors, {sum(v.size for v in out.values())} parameters")


if __name__ == "__main__":
    main()
