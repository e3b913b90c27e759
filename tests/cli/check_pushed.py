#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What `cxrtrack push` left in Orthanc, checked through Orthanc's own REST
API (tests/cli/dicomweb.sh):

    check_pushed.py ORTHANC_URL USER:PASSWORD TMPDIR N_COMPARISONS N_MAPS

Every comparison has one Comprehensive SR (TID 1500 shape: title 126000,
Imaging Measurements 126010, change measures in the 99CXR scheme, each
INFERRED FROM its films) in the study of the film it describes, which
dsrdump reads without an error or warning; every map two RGB Secondary
Captures naming its two source films, with colour in them: the overlay,
and the strip (prior, later film aligned, overlay: three times as wide).
"""
import base64
import io
import json
import subprocess
import sys
import urllib.request

import pydicom

root, user, tmp = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
n_prior, n_maps = int(sys.argv[4]), int(sys.argv[5])
auth = {"Authorization": "Basic " + base64.b64encode(user).decode()}


def get(path, data=None):
    req = urllib.request.Request(root + path, data=data, headers=auth)
    return urllib.request.urlopen(req).read()


def referenced(ds):
    """The SOP Instance UIDs an SR's content items refer to."""
    out = set()
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                if "ReferencedSOPInstanceUID" in item and elem.keyword == "ReferencedSOPSequence":
                    out.add(str(item.ReferencedSOPInstanceUID))
                out |= referenced(item)
    return out


def find(modality):
    q = json.dumps({"Level": "Instance", "Query": {"Modality": modality}}).encode()
    return json.loads(get("/tools/find", q))


srs, scs = find("SR"), find("OT")
assert len(scs) == 2 * n_maps, f"{len(scs)} secondary captures, {n_maps} maps"
ours = 0
for iid in srs:
    raw = get(f"/instances/{iid}/file")
    ds = pydicom.dcmread(io.BytesIO(raw))
    if ds.get("Manufacturer") != "cxrtrack":
        continue  # the test's own report
    ours += 1
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33", ds.SOPClassUID
    assert ds.ConceptNameCodeSequence[0].CodeValue == "126000"
    study = json.loads(get(f"/instances/{iid}/study"))
    film_uids = set()
    for x in json.loads(get(f"/studies/{study['ID']}/instances")):
        tags = json.loads(get(f"/instances/{x['ID']}/simplified-tags"))
        if tags.get("Modality") in ("CR", "DX"):
            film_uids.add(tags["SOPInstanceUID"])
    refs = referenced(ds)
    assert film_uids & refs, f"SR {iid}: no reference to a film of its own study"
    assert len(refs) >= 2, f"SR {iid}: refers to {len(refs)} films"
    with open(f"{tmp}/sr.dcm", "wb") as f:
        f.write(raw)
    r = subprocess.run(["dsrdump", "+Pc", f"{tmp}/sr.dcm"], capture_output=True, text=True)
    assert r.returncode == 0 and "E:" not in r.stderr and "W:" not in r.stderr, r.stderr
    for want in ('(126000,DCM,"Imaging Measurement Report")', "Change since the prior film",
                 '(126010,DCM,"Imaging Measurements")', '(CXR003,99CXR,"Change score")',
                 '(CXR001,99CXR,"Registration status")', '(121112,DCM,"Source of Measurement")'):
        assert want in r.stdout, f"dsrdump of SR {iid}: no {want}"
assert ours == n_prior, f"{ours} SRs of cxrtrack, {n_prior} comparisons"
strips = 0
for iid in scs:
    ds = pydicom.dcmread(io.BytesIO(get(f"/instances/{iid}/file")))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ds.PhotometricInterpretation == "RGB"
    px = ds.pixel_array.astype(int)
    coloured = (abs(px[..., 0] - px[..., 2]) > 40).mean()
    assert px.ndim == 3 and px.shape[2] == 3 and coloured > 0.001, (px.shape, coloured)
    assert len(ds.SourceImageSequence) == 2
    strips += ds.Columns == 3 * ds.Rows
    if ds.Columns == 3 * ds.Rows:  # the prior's panel is grey, the overlay's has colour
        w = ds.Rows
        assert (abs(px[:, :w, 0] - px[:, :w, 2]) > 0).mean() == 0
        assert (abs(px[:, 2 * w:, 0] - px[:, 2 * w:, 2]) > 40).mean() > 0.001
assert strips == n_maps, f"{strips} strips, {n_maps} maps"
print(f"check_pushed: {ours} SRs, {len(scs)} secondary captures ok")
