#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A new film for a patient of a DICOM folder, as a PACS would receive it
(tests/cli/dicomweb.sh, bench/watch_latency.sh):

    new_study_film.py PATIENT_DIR OUT.dcm [K [DAYS]]

The pixels of the patient's K-th latest film (default 2: the one before the
last, so the new film differs from its prior as a real follow-up does), in
a new study, series and SOP instance, dated DAYS (default 30) after the
patient's latest film in PATIENT_DIR. Prints the new SOP Instance UID.
"""
import datetime
import os
import sys

import pydicom
from pydicom.uid import generate_uid

src, out = sys.argv[1], sys.argv[2]
k = int(sys.argv[3]) if len(sys.argv) > 3 else 2
days = int(sys.argv[4]) if len(sys.argv) > 4 else 30
films = sorted((pydicom.dcmread(os.path.join(src, f)) for f in os.listdir(src)),
               key=lambda d: d.StudyDate)
d = films[-k]
date = (datetime.datetime.strptime(films[-1].StudyDate, "%Y%m%d")
        + datetime.timedelta(days=days)).strftime("%Y%m%d")
for tag in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
    if tag in d:
        setattr(d, tag, date)
d.StudyInstanceUID, d.SeriesInstanceUID = generate_uid(), generate_uid()
d.SOPInstanceUID = generate_uid()
d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID
d.save_as(out)
print(d.SOPInstanceUID)
