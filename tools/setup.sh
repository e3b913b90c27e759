#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages cxrtrack needs (only those missing, so a
# second run is quick), then configures and builds ./build. [--tests]
set -eu
cd "$(dirname "$0")/.."
PKGS="gcc g++ libc6-dev meson ninja-build pkg-config libglib2.0-dev libglib2.0-dev-bin
      libsqlite3-dev libpng-dev libjpeg62-turbo-dev libopenjp2-7-dev libdcmtk-dev libdeflate-dev libfftw3-dev zlib1g-dev
      libcmocka-dev libjson-glib-dev libcurl4-openssl-dev libopenblas-dev sqlite3 python3 clang-format"
# --tests: also what the tests write their fixtures with (DICOM with
# pydicom and DCMTK's tools, JPEG with PIL) and the one-node Slurm
# cluster of tests/cli/slurm.sh, Orthanc with its DICOMweb plugin (a real
# PACS for tests/cli/dicomweb.sh)
if [ "${1:-}" = --tests ]; then
  PKGS="$PKGS dcmtk python3-pydicom python3-numpy python3-pil slurmctld slurmd slurm-client munge orthanc orthanc-dicomweb openssl"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing$missing" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build >/dev/null
