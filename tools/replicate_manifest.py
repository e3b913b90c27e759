#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A manifest of a cohort and R copies of it under new patient ids and
film names (rNN_<id>, rNN_<film>), every row naming the original file by
its absolute path: a larger cohort for the shard and scale checks without
copying a film. Each copy is a different patient to cxrtrack; the films'
bytes are the same, which the calibration must see through.

  tools/replicate_manifest.py MANIFEST R > OUT.csv
  tools/replicate_manifest.py --nih Data_Entry.csv[.gz] IMAGES R > OUT.csv

The second form writes a manifest of the NIH rows whose films are in
IMAGES (original sizes and spacings kept).
"""
import csv
import gzip
import os
import sys

FIELDS = ["image_index", "patient_id", "path", "visit", "view_position", "age_years", "sex",
          "finding_labels", "pixel_spacing_mm", "orig_width", "orig_height", "orig_spacing_x_mm",
          "orig_spacing_y_mm"]


def from_manifest(path):
    base = os.path.dirname(os.path.abspath(path))
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            p = row["path"] if os.path.isabs(row["path"]) else os.path.join(base, row["path"])
            row["path"] = p
            row.setdefault("image_index", os.path.basename(p))
            if not row.get("image_index"):
                row["image_index"] = os.path.basename(p)
            yield row


def from_nih(csv_path, images):
    have = set(os.listdir(images))
    opener = gzip.open if csv_path.endswith(".gz") else open
    with opener(csv_path, "rt", newline="") as f:
        r = csv.reader(f)
        next(r)
        for c in r:
            if c[0] not in have:
                continue
            yield {"image_index": c[0], "patient_id": c[3], "path": os.path.join(os.path.abspath(images), c[0]),
                   "visit": c[2], "view_position": c[6], "age_years": c[4], "sex": c[5],
                   "finding_labels": c[1], "orig_width": c[7], "orig_height": c[8],
                   "orig_spacing_x_mm": c[9], "orig_spacing_y_mm": c[10]}


def main():
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == "--nih":
        rows, n = list(from_nih(a[1], a[2])), int(a[3])
    elif len(a) == 2:
        rows, n = list(from_manifest(a[0])), int(a[1])
    else:
        sys.exit(__doc__)
    w = csv.DictWriter(sys.stdout, FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for k in range(n + 1):
        for row in rows:
            out = dict(row)
            if k:
                out["image_index"] = "r%02d_%s" % (k, row["image_index"])
                out["patient_id"] = "r%02d_%s" % (k, row["patient_id"])
            w.writerow(out)


if __name__ == "__main__":
    main()
