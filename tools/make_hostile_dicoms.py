#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Hostile DICOM files, made fresh by each run of tests/cli/hostile_dicom.sh
(and for the fuzz corpus), from a small film of the test corpus:

  tools/make_hostile_dicoms.py BASE.dcm OUT

  nested_undefined.dcm  7,000 sequences nested in items, undefined lengths
  nested_defined.dcm    the same with defined lengths
  many_elements.dcm     2.5 million empty elements, the data set deflated
  jpegls_bomb.dcm       a JPEG-LS film declaring 8192x8192x16 bits in a
                        file of a few KB
  latin1_e.dcm, latin1_u.dcm
                        Patient IDs 'X\\xe91Z' and 'X\\xfc1Z' (ISO_IR 100)
  no_charset.dcm        Patient ID 'X\\xe91Z' and no Specific Character Set
"""
import struct
import sys
import zlib

import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian,
                         JPEGLSLossless, generate_uid)


def explicit_bytes(ds):
    """The file of @ds in explicit VR little endian, and where its data set starts."""
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    from io import BytesIO
    b = BytesIO()
    ds.save_as(b, write_like_original=False)
    raw = b.getvalue()
    gl = struct.unpack("<I", raw[132 + 8:132 + 12])[0]
    return raw, 132 + 12 + gl


def sq(tag_group, tag_elem, length):
    return struct.pack("<HH2sHI", tag_group, tag_elem, b"SQ", 0, length)


def item(length):
    return struct.pack("<HHI", 0xFFFE, 0xE000, length)


ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def nested(raw, at, depth, defined):
    # (0008,0006) Language Code Sequence: an SQ tag before the film's own
    if defined:
        inner = b""
        for _ in range(depth):
            it = item(len(inner)) + inner
            inner = sq(0x0008, 0x0006, len(it)) + it
        body = inner
    else:
        body = (sq(0x0008, 0x0006, 0xFFFFFFFF) + item(0xFFFFFFFF)) * depth \
            + (ITEM_END + SEQ_END) * depth
    return raw[:at] + body + raw[at:]


def main(base, out):
    ds = pydicom.dcmread(base)
    ds.SOPInstanceUID = generate_uid()
    raw, at = explicit_bytes(ds)
    open(f"{out}/nested_undefined.dcm", "wb").write(nested(raw, at, 7000, False))
    open(f"{out}/nested_defined.dcm", "wb").write(nested(raw, at, 7000, True))

    # 2.5 M empty LO elements after the pixel data, in odd (private) groups
    extra = bytearray()
    n = 0
    group = 0x7FE1
    while n < 2_500_000:
        for e in range(0x1000, 0x10000):
            extra += struct.pack("<HH2sH", group, e, b"LO", 0)
            n += 1
            if n == 2_500_000:
                break
        group += 2
    ds2 = pydicom.dcmread(base)
    ds2.SOPInstanceUID = generate_uid()
    ds2.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    from io import BytesIO
    b = BytesIO()
    ds2.save_as(b, write_like_original=False)
    d = b.getvalue()
    gl = struct.unpack("<I", d[132 + 8:132 + 12])[0]
    meta_end = 132 + 12 + gl
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = z.compress(raw[at:] + bytes(extra)) + z.flush()
    open(f"{out}/many_elements.dcm", "wb").write(d[:meta_end] + body)

    # a JPEG-LS film declaring 8192 x 8192 x 16 bits
    ds3 = pydicom.dcmread(base)
    ds3.SOPInstanceUID = generate_uid()
    ds3.Rows = ds3.Columns = 8192
    ds3.BitsAllocated, ds3.BitsStored, ds3.HighBit = 16, 16, 15
    ds3.PixelRepresentation = 0
    frag = bytes([0xFF, 0xD8, 0xFF, 0xF7]) + bytes(3000) + bytes([0xFF, 0xD9])
    ds3.PixelData = encapsulate([frag])
    ds3["PixelData"].VR = "OB"
    ds3["PixelData"].is_undefined_length = True
    ds3.file_meta.TransferSyntaxUID = JPEGLSLossless
    ds3.save_as(f"{out}/jpegls_bomb.dcm", write_like_original=False)

    # two Patient IDs that differ only in a Latin-1 letter, and one without
    # its character set
    for name, pid, cs in (("latin1_e", b"X\xe91Z", "ISO_IR 100"),
                          ("latin1_u", b"X\xfc1Z", "ISO_IR 100"),
                          ("no_charset", b"X\xe91Z", None)):
        d4 = pydicom.dcmread(base)
        d4.SOPInstanceUID = generate_uid()
        if cs:
            d4.SpecificCharacterSet = cs
        elif "SpecificCharacterSet" in d4:
            del d4.SpecificCharacterSet
        d4.PatientID = pid.decode("latin-1")
        raw4, at4 = explicit_bytes(d4)
        # the ID's bytes as Latin-1, whatever pydicom encoded
        enc = pid.decode("latin-1").encode("utf-8")
        if enc in raw4[at4:]:
            i = raw4.index(enc, at4)
            hdr = raw4[i - 8:i]
            ln = struct.unpack("<H", hdr[6:8])[0]
            val = pid + (b" " if len(pid) % 2 else b"")
            raw4 = raw4[:i - 2] + struct.pack("<H", len(val)) + val + raw4[i - 2 + 2 + ln:]
        open(f"{out}/{name}.dcm", "wb").write(raw4)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
