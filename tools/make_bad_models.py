#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Broken safetensors files for tests/test_model.c (tests/data/bad/model_*).
Each breaks one rule the reader checks; the missing and misshaped tensor
cases need a whole architecture and are built by the test itself.
Run from the repository root."""
import json
import struct

META = {"architecture": "densenet121", "input_size": "224", "classes": "A|B"}


def st(header, data=b"", hlen=None):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def t(dtype, shape, b, e):
    return {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}


cases = {
    "model_short": b"\x10\x00\x00",
    "model_header_past_end": st({"__metadata__": META}, hlen=1 << 20),
    "model_not_json": struct.pack("<Q", 9) + b"{not json",
    "model_bad_dtype": st({"__metadata__": META, "x": t("I64", [2], 0, 16)}, bytes(16)),
    "model_overlap": st({"__metadata__": META, "a": t("F32", [4], 0, 16), "b": t("F32", [4], 8, 24)}, bytes(24)),
    "model_offset_past_end": st({"__metadata__": META, "a": t("F32", [4], 0, 16), "b": t("F32", [4], 16, 32)}, bytes(20)),
    "model_size_mismatch": st({"__metadata__": META, "a": t("F32", [2, 2], 0, 8)}, bytes(8)),
    "model_absurd_shape": st({"__metadata__": META, "a": t("F32", [1 << 40, 1 << 40], 0, 16)}, bytes(16)),
    "model_no_metadata": st({"a": t("F32", [4], 0, 16)}, bytes(16)),
    "model_unknown_arch": st({"__metadata__": dict(META, architecture="resnet50"), "a": t("F32", [4], 0, 16)}, bytes(16)),
}
for name, data in cases.items():
    with open(f"tests/data/bad/{name}.safetensors", "wb") as f:
        f.write(data)
    print(name, len(data))
