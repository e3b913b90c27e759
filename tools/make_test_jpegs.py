#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the JPEG fixtures under tests/data/jpeg/ from a 96x64 crop of a
real NIH film (sample/images/00000001_000.png, rows 380.., cols 280..),
with PIL (Debian's python3-pil, libjpeg-turbo underneath):

  upright.png       the crop, the reference every JPEG must read back as
  gray.jpg          baseline, gray, quality 95
  rgb.jpg           the same pixels as colour (Y'CbCr), quality 95
  progressive.jpg   gray, progressive
  exif6.jpg         stored turned 90 degrees anticlockwise, EXIF orientation 6
                    (turn clockwise to view): reads back upright, 96x64
  exif3.jpg         stored upside down, EXIF orientation 3
  truncated.jpg     gray.jpg cut at 60 %: must be refused, not filled with grey

Run from the repository root: /usr/bin/python3 tools/make_test_jpegs.py
"""
import io, os

from PIL import Image

SRC = "sample/images/00000001_000.png"
OUT = "tests/data/jpeg"
os.makedirs(OUT, exist_ok=True)
im = Image.open(SRC).convert("L").crop((280, 380, 376, 444))
im.save(f"{OUT}/upright.png")
im.save(f"{OUT}/gray.jpg", quality=95)
im.convert("RGB").save(f"{OUT}/rgb.jpg", quality=95)
im.save(f"{OUT}/progressive.jpg", quality=95, progressive=True)


def with_orientation(img, value):
    exif = Image.Exif()
    exif[0x0112] = value
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


# PIL's rotate turns anticlockwise: stored so that a clockwise turn shows it upright
open(f"{OUT}/exif6.jpg", "wb").write(with_orientation(im.rotate(90, expand=True), 6))
open(f"{OUT}/exif3.jpg", "wb").write(with_orientation(im.rotate(180), 3))
raw = open(f"{OUT}/gray.jpg", "rb").read()
open(f"{OUT}/truncated.jpg", "wb").write(raw[: len(raw) * 6 // 10])
