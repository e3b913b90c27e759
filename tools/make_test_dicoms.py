#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""DICOM films for the tests, written with pydicom (Debian's python3-pydicom)
and compressed with DCMTK's own tools (dcmconv, dcmcjpeg, dcmcjpls, dcmcrle),
so the reader is checked against an encoder it does not share code with.

  tools/make_test_dicoms.py corpus
      writes tests/data/dicom/ from a 96x64 crop of a real NIH film
      (sample/images/00000001_000.png, rows 380.., cols 280..), the crop
      itself as reference.png; what each file must read back as is in
      tests/test_image.c (test_dicom) and listed here:

      mono2_8          8-bit MONOCHROME2, explicit VR little endian: the crop
      mono1_8          MONOCHROME1, stored 255 - v: reads back as the crop
      rescale_window12 12 bits stored 4v + 100, Rescale Slope 0.25, Intercept
                       -25 (so the modality value is v), window 128 / 256:
                       reads back as the crop; --voi none: (v + 25) / 1023.75
      mono2_16         16 bits, stored 257 v: the crop
      signed_pad16     signed 16 bits, stored 100 v - 12000, a 4-px border of
                       Pixel Padding Value -32768: border black; --voi auto:
                       the interior's own range
      rgb8             RGB with R = G = B = v: the crop
      implicit, deflated, jpeg_lossless, jpegls, rle, jpeg_lossless12
                       the same pixels in each transfer syntax (lossless)
      jpeg_baseline    lossy JPEG: close to the crop
      j2k_labelled     an object in a JPEG 2000 transfer syntax whose
                       codestream is not one: refused with that reason
      multiframe       two frames: refused with the reason
      truncated        mono2_8 cut at 60 %: refused
      sr               a Basic Text SR, no pixel data
      no_patient_id, no_date, lateral, hand
                       films ingest must reject or store with a reason

  tools/make_test_dicoms.py lengths
      writes, beside the corpus, the files that check how declared
      lengths are read (src/image/image-dicom.cc, MemoryStream):

      sequences        mono2_8 with nested sequences, of undefined length
                       (pydicom) and, in sequences_implicit (dcmconv +ti
                       +e), of defined length: the crop
      huge_un          mono2_8 with an UN element declaring 3.5 GB before
                       its pixel data: refused, naming (0011,1010)
      huge_nested      the same element inside an item of a sequence
      huge_implicit    implicit VR: a defined-length sequence whose item
                       holds an element declaring 3.5 GB
      huge_deflated    huge_un's data set deflated
      deflated_corrupt deflated.dcm with a corrupt deflate stream: refused
      deflated_meta_cut deflated.dcm whose meta group cannot be read: refused

  tools/make_test_dicoms.py j2k
      writes, beside the corpus, JPEG 2000 films (codestreams by Pillow's
      OpenJPEG encoder, encapsulated by pydicom; src/image/image-j2k.c reads them):

      j2k_lossless     the crop, reversible, 1.2.840.10008.1.2.4.90: the crop
      j2k_lossless16   257 v in 16 bits, reversible: the crop
      j2k_lossy        the crop, irreversible at 20:1, .91: close to it
      j2k_size         a 128x128 codestream in a 96x64 header: refused
      j2k_rgb          a three-component codestream: refused
      j2k_cut          the crop's codestream cut in half: refused
      j2k_20bit        its SIZ saying 20-bit samples: refused

  tools/make_test_dicoms.py sample MANIFEST OUTDIR
      writes every film of a cxrtrack manifest (sample/manifest.csv) as a
      DICOM file under OUTDIR/<patient>/, with the manifest's patient, view,
      age, sex and pixel spacing in the header and a study date from its
      visit, cycling through lossless transfer syntaxes (reversible JPEG
      2000 among them): the same pixels.

Run from the repository root.
"""
import csv, datetime, hashlib, os, shutil, subprocess, sys, tempfile

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from PIL import Image

DX_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR


def uid_for(text):
    """A stable UID from a name (2.25 + a decimal of its hash), so reruns agree."""
    return "2.25." + str(int(hashlib.sha256(text.encode()).hexdigest()[:30], 16))


def base(name, patient="P1", date="20200101", time="101500", view="PA", cls=DX_CLASS):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = cls
    meta.MediaStorageSOPInstanceUID = uid_for(name)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1045"
    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID = cls
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid_for(name + "/study")
    ds.SeriesInstanceUID = uid_for(name + "/series")
    ds.Modality = "DX"
    ds.PatientName = "Test^Not^Stored"
    if patient is not None:
        ds.PatientID = patient
    if date is not None:
        ds.StudyDate = ds.AcquisitionDate = date
        ds.StudyTime = ds.AcquisitionTime = time
    if view:
        ds.ViewPosition = view
    ds.BodyPartExamined = "CHEST"
    return ds


def set_pixels(ds, arr, bits_stored, photometric="MONOCHROME2", signed=False):
    arr = np.asarray(arr)
    ds.Rows, ds.Columns = arr.shape[:2]
    ds.PhotometricInterpretation = photometric
    if photometric == "RGB":
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    else:
        ds.SamplesPerPixel = 1
    ds.BitsAllocated = 8 if bits_stored <= 8 else 16
    ds.BitsStored, ds.HighBit = bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    dtype = {(8, False): np.uint8, (16, False): "<u2", (16, True): "<i2"}[(ds.BitsAllocated, signed)]
    ds.PixelData = arr.astype(dtype).tobytes()


def save(ds, path):
    ds.save_as(path, write_like_original=False)


def dcmtk(tool, args, src, dst):
    subprocess.run([tool, *args, src, dst], check=True)


def corpus(out="tests/data/dicom"):
    os.makedirs(out, exist_ok=True)
    src = Image.open("sample/images/00000001_000.png").convert("L").crop((280, 380, 376, 444))
    src.save(f"{out}/reference.png")
    v = np.asarray(src).astype(np.int64)
    p = lambda n: f"{out}/{n}.dcm"

    ds = base("mono2_8"); set_pixels(ds, v, 8); save(ds, p("mono2_8"))
    ds = base("mono1_8"); set_pixels(ds, 255 - v, 8, "MONOCHROME1"); save(ds, p("mono1_8"))
    ds = base("rescale_window12"); set_pixels(ds, 4 * v + 100, 12)
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "0.25", "-25", "US"
    ds.WindowCenter, ds.WindowWidth = "128", "256"
    save(ds, p("rescale_window12"))
    ds = base("mono2_16"); set_pixels(ds, 257 * v, 16); save(ds, p("mono2_16"))
    a = 100 * v - 12000
    a[:4, :] = a[-4:, :] = a[:, :4] = a[:, -4:] = -32768
    ds = base("signed_pad16"); set_pixels(ds, a, 16, signed=True)
    ds.PixelPaddingValue = -32768
    save(ds, p("signed_pad16"))
    ds = base("rgb8"); set_pixels(ds, np.stack([v, v, v], axis=2), 8, "RGB"); save(ds, p("rgb8"))

    dcmtk("dcmconv", ["+ti"], p("mono2_8"), p("implicit"))
    dcmtk("dcmconv", ["+td"], p("mono2_8"), p("deflated"))
    dcmtk("dcmcjpeg", ["+e1"], p("mono2_8"), p("jpeg_lossless"))
    dcmtk("dcmcjpeg", ["+eb", "+sr", "+q", "95"], p("mono2_8"), p("jpeg_baseline"))
    dcmtk("dcmcjpls", ["+el"], p("mono2_8"), p("jpegls"))
    dcmtk("dcmcrle", [], p("mono2_8"), p("rle"))
    dcmtk("dcmcjpeg", ["+e1"], p("rescale_window12"), p("jpeg_lossless12"))

    ds = base("j2k_labelled"); set_pixels(ds, v, 8)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
    ds.is_implicit_VR = False
    save(ds, p("j2k_labelled"))

    ds = base("multiframe"); set_pixels(ds, np.concatenate([v, v]), 8)
    ds.Rows, ds.NumberOfFrames = v.shape[0], 2
    save(ds, p("multiframe"))

    ds = base("truncated"); set_pixels(ds, v, 8); save(ds, p("truncated"))
    data = open(p("truncated"), "rb").read()
    open(p("truncated"), "wb").write(data[: int(len(data) * 0.6)])

    ds = base("sr", view=None, cls=SR_CLASS)
    ds.Modality = "SR"
    ds.ValueType = "CONTAINER"
    save(ds, p("sr"))

    ds = base("no_patient_id", patient=None); set_pixels(ds, v, 8); save(ds, p("no_patient_id"))
    ds = base("no_date", date=None); set_pixels(ds, v, 8); save(ds, p("no_date"))
    ds = base("lateral", view="LL"); set_pixels(ds, v, 8); save(ds, p("lateral"))
    ds = base("hand"); ds.BodyPartExamined = "HAND"; set_pixels(ds, v, 8); save(ds, p("hand"))


def lengths(out="tests/data/dicom"):
    import struct, zlib
    p = lambda n: f"{out}/{n}.dcm"
    v = np.asarray(Image.open(f"{out}/reference.png")).astype(np.int64)
    ds = base("sequences"); set_pixels(ds, v, 8)
    inner = Dataset(); inner.ReferencedSOPClassUID = DX_CLASS; inner.ReferencedSOPInstanceUID = uid_for("inner")
    item = Dataset(); item.ReferencedSOPClassUID = DX_CLASS; item.ReferencedSOPInstanceUID = uid_for("outer")
    item.ReferencedImageSequence = [inner]
    ds.ReferencedImageSequence = [item, Dataset()]
    save(ds, p("sequences"))
    dcmtk("dcmconv", ["+ti", "+e"], p("sequences"), p("sequences_implicit"))

    huge = 0xE0000000
    src = open(p("mono2_8"), "rb").read()
    at = src.find(b"\xe0\x7f\x10\x00")  # (7FE0,0010), explicit VR little endian
    un = struct.pack("<HH2sHI", 0x0011, 0x1010, b"UN", 0, huge)
    open(p("huge_un"), "wb").write(src[:at] + un + src[at:])
    # (0008,1140) SQ, undefined length; an item of undefined length holding the element
    seq = (struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
           + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
           + struct.pack("<HH2sHI", 0x0011, 0x1010, b"OB", 0, huge)
           + struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    open(p("huge_nested"), "wb").write(src[:at] + seq + src[at:])

    # implicit VR: a defined-length (0008,1140) whose item holds (0008,1155) declaring 3.5 GB
    imp = open(p("implicit"), "rb").read()
    at = imp.find(b"\xe0\x7f\x10\x00")
    elem = struct.pack("<HHI", 0x0008, 0x1155, huge) + b"1.2\x00\x00"
    itm = struct.pack("<HHI", 0xFFFE, 0xE000, len(elem)) + elem
    sq = struct.pack("<HHI", 0x0008, 0x1140, len(itm)) + itm
    open(p("huge_implicit"), "wb").write(imp[:at] + sq + imp[at:])

    # huge_un's data set deflated: the meta group of deflated.dcm, then raw deflate
    dfl = open(p("deflated"), "rb").read()
    hu = open(p("huge_un"), "rb").read()

    def meta_end(b):
        i = 132
        while struct.unpack("<H", b[i:i + 2])[0] == 0x0002:
            vr = b[i + 4:i + 6]
            if vr in (b"OB", b"UN", b"UT", b"SQ", b"UC", b"UR", b"OW"):
                i += 12 + struct.unpack("<I", b[i + 8:i + 12])[0]
            else:
                i += 8 + struct.unpack("<H", b[i + 6:i + 8])[0]
        return i
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = c.compress(hu[meta_end(hu):]) + c.flush()
    open(p("huge_deflated"), "wb").write(dfl[:meta_end(dfl)] + body)

    # deflated.dcm with its deflated data set's first bytes overwritten
    e = meta_end(dfl)
    open(p("deflated_corrupt"), "wb").write(dfl[:e] + b"\xff" * 16 + dfl[e + 16:])
    # deflated.dcm whose meta group's first element (the group length, UL)
    # declares more than the file: the meta group cannot be read through
    bad = bytearray(dfl)
    bad[132 + 6:132 + 8] = struct.pack("<H", 0xFFFF)
    open(p("deflated_meta_cut"), "wb").write(bytes(bad))


def j2k(out="tests/data/dicom"):
    import io
    p = lambda n: f"{out}/{n}.dcm"
    v = np.asarray(Image.open(f"{out}/reference.png")).astype(np.int64)

    def codestream(img, **kw):
        b = io.BytesIO()
        img.save(b, "JPEG2000", no_jp2=True, **kw)
        return b.getvalue()

    def film(name, cs, rows, cols, bits, ts, photometric="MONOCHROME2", spp=1):
        ds = base(name)
        ds.Rows, ds.Columns = rows, cols
        ds.PhotometricInterpretation = photometric
        ds.SamplesPerPixel = spp
        if spp == 3:
            ds.PlanarConfiguration = 0
        ds.BitsAllocated = 8 if bits <= 8 else 16
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
        ds.PixelData = encapsulate([cs])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = ts
        ds.is_implicit_VR = False
        save(ds, p(name))

    lossless, lossy = "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"
    crop = Image.fromarray(v.astype(np.uint8))
    film("j2k_lossless", codestream(crop), *v.shape, 8, lossless)
    v16 = Image.fromarray((257 * v).astype(np.uint16), "I;16")
    film("j2k_lossless16", codestream(v16), *v.shape, 16, lossless)
    film("j2k_lossy", codestream(crop, irreversible=True, quality_mode="rates", quality_layers=[20]),
         *v.shape, 8, lossy)
    big = Image.fromarray(np.zeros((128, 128), np.uint8))
    film("j2k_size", codestream(big), *v.shape, 8, lossless)
    rgb = Image.fromarray(np.stack([v, v, v], axis=2).astype(np.uint8), "RGB")
    film("j2k_rgb", codestream(rgb), *v.shape, 8, lossless, "RGB", 3)
    cs = codestream(crop)
    film("j2k_cut", cs[: len(cs) // 2], *v.shape, 8, lossless)
    # SIZ's Ssiz of the one component (byte 42 of the codestream): 20 bits
    film("j2k_20bit", cs[:42] + bytes([19]) + cs[43:], *v.shape, 8, lossless)


LOSSLESS = [None, ["dcmcrle"], ["dcmcjpls", "+el"], ["dcmcjpeg", "+e1"], ["dcmconv", "+td"], ["j2k"]]


def sample(manifest, out):
    base_dir = os.path.dirname(os.path.abspath(manifest))
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    tmp = tempfile.mkdtemp()
    for i, r in enumerate(rows):
        name = os.path.basename(r["path"])
        stem = os.path.splitext(name)[0]
        day = datetime.date(2019, 1, 1) + datetime.timedelta(days=30 * int(r["visit"]))
        ds = base(stem, patient=r["patient_id"], date=day.strftime("%Y%m%d"),
                  view=r["view_position"])
        ds.PatientSex = r["sex"]
        ds.PatientAge = "%03dY" % int(float(r["age_years"]))
        ds.Modality = "CR"
        img = np.asarray(Image.open(os.path.join(base_dir, r["path"])).convert("L"))
        # the manifest's spacing across, and down that times the pixel
        # aspect its original size and spacing give (cxrtrack's
        # scan_pixel_aspect): the same spacing and aspect as the PNG row
        col = row = float(r["pixel_spacing_mm"])
        if r.get("orig_height") and r.get("orig_width"):
            sx = float(r.get("orig_spacing_x_mm") or 1)
            sy = float(r.get("orig_spacing_y_mm") or sx)
            aspect = (float(r["orig_height"]) * sy / img.shape[0]) / (float(r["orig_width"]) * sx / img.shape[1])
            row = col * aspect
        ds.PixelSpacing = ["%.14g" % row, "%.14g" % col]  # DS: at most 16 characters
        set_pixels(ds, img, 8)
        d = os.path.join(out, r["patient_id"])
        os.makedirs(d, exist_ok=True)
        dst = os.path.join(d, stem + ".dcm")
        tool = LOSSLESS[i % len(LOSSLESS)]
        if tool is None:
            save(ds, dst)
        elif tool == ["j2k"]:  # reversible JPEG 2000: Pillow's OpenJPEG encoder
            import io
            b = io.BytesIO()
            Image.fromarray(img).save(b, "JPEG2000", no_jp2=True)
            ds.PixelData = encapsulate([b.getvalue()])
            ds["PixelData"].VR = "OB"
            ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
            save(ds, dst)
        else:
            plain = os.path.join(tmp, stem + ".dcm")
            save(ds, plain)
            dcmtk(tool[0], tool[1:], plain, dst)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "corpus":
        corpus()
    elif len(sys.argv) >= 2 and sys.argv[1] == "j2k":
        j2k()
    elif len(sys.argv) >= 2 and sys.argv[1] == "lengths":
        lengths()
    elif len(sys.argv) == 4 and sys.argv[1] == "sample":
        sample(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
