# SPDX-License-Identifier: MIT
"""The NIH series1024 films the registration benches use: their rows of
../shared/data/nih/images.csv by patient (visit order from Follow-up #), and
each film's pixel aspect (height over width in the patient) from the
original size and spacing in the full metadata: every film is stored at
1024 x 1024 whatever its original shape."""
import csv, gzip

D = "../shared/data/nih"


def series():
    """Patient ID -> that patient's series1024 rows, in Follow-up # order."""
    by = {}
    for r in csv.DictReader(open(D + "/images.csv")):
        if r["has_1024"] == "1":
            by.setdefault(r["Patient ID"], []).append(r)
    for films in by.values():
        films.sort(key=lambda r: int(r["Follow-up #"]))
    return by


def aspects(names):
    """Image index -> pixel aspect, for @names."""
    out = {}
    with gzip.open(D + "/Data_Entry_2017_v2020.csv.gz", "rt") as fh:
        for r in csv.reader(fh):
            if r[0] in names:
                w, h, sx, sy = int(r[7]), int(r[8]), float(r[9]), float(r[10])
                out[r[0]] = (h * sy) / (w * sx)
    return out
