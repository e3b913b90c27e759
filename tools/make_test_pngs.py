#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the PNG fixtures under tests/data/ from a 64x48 crop of a real
NIH film (sample/images/00000001_000.png, rows 400.., cols 300..).

good/: the same pixels as gray8.png in every layout libcxr must read
(16-bit, RGB, RGBA, gray+alpha, palette, 1-bit, Adam7 interlaced), so a test
can require identical luminance. bad/: files that must be refused with a
specific error. A small PNG writer is used instead of PIL so that every
chunk (and every broken CRC) is under our control.

Run from the repository root: /usr/bin/python3 tools/make_test_pngs.py
"""
import struct
import zlib

import cv2
import numpy as np

SRC = "sample/images/00000001_000.png"


def chunk(tag, data, crc=None):
    c = zlib.crc32(tag + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", c)


def png(width, height, bit_depth, color_type, raw, interlace=0, extra=b"", ihdr_override=None):
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    if ihdr_override is not None:
        ihdr = ihdr_override
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def rows_raw(a):
    """Filter type 0 per row; a is (h, w*bytes) uint8."""
    return b"".join(b"\x00" + a[y].tobytes() for y in range(a.shape[0]))


def adam7(a, bpp):
    """Adam7 passes of a (h, w, bpp) uint8 array, filter type 0."""
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2)]
    out = b""
    for x0, y0, dx, dy in passes:
        sub = a[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        out += rows_raw(sub.reshape(sub.shape[0], -1))
    return out


def main():
    film = cv2.imread(SRC, cv2.IMREAD_GRAYSCALE)
    g = np.ascontiguousarray(film[400:448, 300:364])  # 48 x 64
    h, w = g.shape
    good = "tests/data/good/"
    bad = "tests/data/bad/"
    files = {}
    files[good + "gray8.png"] = png(w, h, 8, 0, rows_raw(g))
    g16 = (g.astype(">u2") * 257)
    files[good + "gray16.png"] = png(w, h, 16, 0, rows_raw(g16.view(np.uint8).reshape(h, -1)))
    rgb = np.stack([g, g, g], -1)
    files[good + "rgb8.png"] = png(w, h, 8, 2, rows_raw(rgb.reshape(h, -1)))
    rgba = np.concatenate([rgb, np.full((h, w, 1), 200, np.uint8)], -1)
    files[good + "rgba8.png"] = png(w, h, 8, 6, rows_raw(rgba.reshape(h, -1)))
    ga = np.stack([g, np.full_like(g, 255)], -1)
    files[good + "gray_alpha8.png"] = png(w, h, 8, 4, rows_raw(ga.reshape(h, -1)))
    # Palette: the 256 gray levels as entries, indices = gray values.
    plte = chunk(b"PLTE", bytes(np.repeat(np.arange(256, dtype=np.uint8), 3)))
    files[good + "palette8.png"] = png(w, h, 8, 3, rows_raw(g), extra=plte)
    files[good + "interlaced8.png"] = png(w, h, 8, 0, adam7(g[:, :, None], 1), interlace=1)
    rgb16 = np.stack([g16, g16, g16], -1)
    files[good + "rgb16_interlaced.png"] = png(w, h, 16, 2,
                                                adam7(rgb16.view(np.uint8).reshape(h, w, 6), 6),
                                                interlace=1)
    # 1-bit: threshold at 128; the expected image is 0 or 255.
    bits = (g >= 128).astype(np.uint8)
    packed = np.packbits(bits, axis=1)
    files[good + "gray1.png"] = png(w, h, 1, 0, rows_raw(packed))

    ref = files[good + "gray8.png"]
    files[bad + "empty.png"] = b""
    files[bad + "not_png.png"] = b"Image Index,Finding Labels\n00000001_000.png,No Finding\n"
    files[bad + "truncated.png"] = ref[: len(ref) // 2]
    idat = ref.index(b"IDAT")
    idat_len = struct.unpack(">I", ref[idat - 4:idat])[0]
    broken = bytearray(ref)
    broken[idat + 4 + idat_len] ^= 0xFF  # the IDAT CRC field itself; data intact
    files[bad + "bad_crc.png"] = bytes(broken)
    broken = bytearray(ref)
    broken[idat + 10] ^= 0xFF  # a compressed data byte (libpng's inflate fails first)
    files[bad + "corrupt_idat.png"] = bytes(broken)
    files[bad + "no_iend.png"] = ref[: ref.index(b"IEND") - 4]
    files[bad + "huge_dims.png"] = png(0x7FFFFFFF, 0x7FFFFFFF, 8, 0, rows_raw(g[:1]))
    files[bad + "over_limit.png"] = png(9000, 9000, 8, 0, rows_raw(g[:1]))
    files[bad + "zero_width.png"] = png(0, 48, 8, 0, rows_raw(g))
    # the IDATs in two runs, a tEXt between them: libpng stops at the first
    # (not enough image data); image-png.c's short road leaves it to libpng
    z = zlib.compress(rows_raw(g))
    head = ref[: ref.index(b"IDAT") - 4]
    files[bad + "split_idat.png"] = (head + chunk(b"IDAT", z[: len(z) // 2])
                                     + chunk(b"tEXt", b"a\x00b") + chunk(b"IDAT", z[len(z) // 2:])
                                     + chunk(b"IEND", b""))
    for path, data in files.items():
        with open(path, "wb") as f:
            f.write(data)
        print(path, len(data))


if __name__ == "__main__":
    main()
