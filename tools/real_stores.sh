#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the three stores the real-data checks compare: the README's main
# job on sample/, the NIH series1024 patients (full NIH metadata, their
# 1024-px films) and the COVID-19 image collection series, each ingested
# and analysed with the default model in a fresh store under OUT.
#
# Usage: tools/real_stores.sh OUT [BUILD] [extra analyze options...]
set -eu
OUT=${1:?usage: tools/real_stores.sh OUT [BUILD]}
B=${2:-build}
[ $# -ge 2 ] && shift 2 || shift $#
X=$B/src/cxrtrack
D=${CXR_SHARED_DATA:-../shared/data}
mkdir -p "$OUT"
rm -rf "$OUT"/sample.sqlite* "$OUT"/series1024.sqlite* "$OUT"/covid.sqlite*
$X ingest --db "$OUT/sample.sqlite" --manifest sample/manifest.csv >/dev/null
$X analyze --db "$OUT/sample.sqlite" --model models/cxr-default.safetensors "$@"
$X ingest --db "$OUT/series1024.sqlite" --nih "$D/nih/Data_Entry_2017_v2020.csv.gz" \
  --images "$D/nih/series1024" >/dev/null
$X analyze --db "$OUT/series1024.sqlite" --model models/cxr-default.safetensors "$@"
$X ingest --db "$OUT/covid.sqlite" --manifest "$D/covid-series/metadata.csv" \
  --images "$D/covid-series/images" --patient-prefix covid- \
  --map patient_id=patientid,day_offset=offset,path=filename,view_position=view,age_years=age,finding_labels=finding \
  >/dev/null
$X analyze --db "$OUT/covid.sqlite" --model models/cxr-default.safetensors "$@"
