#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A DICOMweb server that answers badly, for tests/cli/dicomweb.sh.

    fake_dicomweb.py GOOD.dcm PORTFILE [CERT.pem KEY.pem]

Serves QIDO-RS and WADO-RS on 127.0.0.1 (a free port, written to
PORTFILE) for eight studies of one patient. Study 1 serves GOOD.dcm
properly; each other study fails in one way a real server or network can:

  2 the instance answers HTTP 500
  3 the multipart answer is cut before its closing boundary
  4 the instance comes as text/html (a login page, a proxy's error)
  5 the instance never comes (the server stalls)
  6 the instance announces 2 GiB (Content-Length), then stops
  7 listing the study's instances answers HTTP 503
  8 the study's UID is not a UID ('../../etc'): never used in a path

With a certificate and key it speaks HTTPS. Every request is logged to
stderr.
"""
import json
import socketserver
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pydicom

GOOD = sys.argv[1]
PORTFILE = sys.argv[2]
ds = pydicom.dcmread(GOOD, stop_before_pixels=True)
PATIENT = str(ds.PatientID)
ROOT = "1.2.826.0.1.3680043.8.498.77"
STUDIES = {f"{ROOT}.{k}": k for k in range(1, 8)}
STUDIES["../../etc"] = 8
GOOD_BYTES = open(GOOD, "rb").read()


def sop_of(k):
    return str(ds.SOPInstanceUID) if k == 1 else f"{ROOT}.{k}.1.1"


def series_of(k):
    return str(ds.SeriesInstanceUID) if k == 1 else f"{ROOT}.{k}.1"


def attr(vr, v):
    return {"vr": vr, "Value": [v]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_dicomweb: " + fmt % args + "\n")

    def send(self, status, ctype, body, length=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        parts = path.strip("/").split("/")
        if parts == ["dicom-web", "studies"]:
            found = [{"0020000D": attr("UI", uid), "00100020": attr("LO", PATIENT),
                      "00080061": attr("CS", "CR")} for uid in STUDIES]
            return self.send(200, "application/dicom+json", json.dumps(found).encode())
        if len(parts) == 4 and parts[3] == "instances":
            k = STUDIES.get(parts[2])
            if k == 7:
                return self.send(503, "text/plain", b"Service Unavailable: index rebuilding")
            found = [{"00080018": attr("UI", sop_of(k)), "0020000E": attr("UI", series_of(k)),
                      "00080060": attr("CS", "CR")}]
            return self.send(200, "application/dicom+json", json.dumps(found).encode())
        if len(parts) == 7 and parts[5] == "instances":
            k = STUDIES.get(parts[2])
            b = "cxr-fake-boundary"
            ctype = f'multipart/related; type="application/dicom"; boundary={b}'
            head = f"--{b}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            whole = head + GOOD_BYTES + f"\r\n--{b}--\r\n".encode()
            if k == 1:
                return self.send(200, ctype, whole)
            if k == 2:
                return self.send(500, "text/plain", b"Internal Server Error: storage area offline")
            if k == 3:
                cut = whole[: len(head) + len(GOOD_BYTES) // 2]
                return self.send(200, ctype, cut)
            if k == 4:
                return self.send(200, "text/html", b"<html><body>Please log in</body></html>")
            if k == 5:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(whole)))
                self.end_headers()
                self.wfile.write(whole[:100])
                self.wfile.flush()
                time.sleep(30)
                return
            if k == 6:
                return self.send(200, ctype, whole[:100], length=2 << 30)
        self.send(404, "text/plain", b"not found")


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
if len(sys.argv) > 4:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os  # noqa: E402

os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
