#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Reference test-retest limits, and how many films a store needs for its own.

A store's limits come from re-posed, re-exposed copies of its own films
(src/progression/calibrate.c): one film per patient, two copies each. A small store (a
single patient, the 4-patient sample) has too few films for a 95th
percentile to mean anything, so cxrtrack ships limits derived the same way
from a large real cohort and uses them until a store has enough films of
its own. This script makes both:

  * a store of every series here (the NIH series1024 films, the COVID-19
    image collection series, the BrixIA development films: one first film
    per patient), calibrated with `cxrtrack calibrate --force --samples`
    over all of them: the reference limits, written to
    models/reference-limits.csv with their source, film count and the
    classifier they belong to; then analysed, for the visit-to-visit
    limits of its consecutive pairs (a store with fewer than 30 pairs of
    its own uses these);
  * the stability of a limit against n: for n films drawn at random (300
    draws per n), the limit from their copies against the limit from all
    films, |relative error| per signal; the minimum n is the smallest at
    which the 90th percentile of that error, taken over draws and then the
    median over signals, is at most 25 %. Printed, and written beside the
    limits (min_films), which cxrtrack reads.

  /usr/bin/python3 tools/reference_limits.py [--build DIR] [--dry-run]
"""
import argparse
import csv
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections import defaultdict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
# the limits' floors, as src/progression/signal.c sets them
FLOORS = {"embedding_distance": 0.01, "trend_score": 1.0, "severity:global": 0.5,
          "cardiothoracic_ratio": 0.01}
TOLERANCE = 0.25
NS = (2, 4, 6, 8, 12, 16, 20, 30, 40, 60, 80, 120)


def floor_of(signal):
    if signal in FLOORS:
        return FLOORS[signal]
    if signal.startswith("probability:"):
        return 0.01
    if signal.startswith("lung_area_loss:"):
        return 0.02
    if signal.startswith("severity:"):
        return 0.1
    raise SystemExit(f"no floor known for signal {signal}")


def run(cmd):
    # the reference is derived from these films alone, never from an older one
    env = dict(os.environ, CXRTRACK_REFERENCE_LIMITS="")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "reference-limits.csv"))
    ap.add_argument("--work", help="folder for the store (default: a temporary one)")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    exe = os.path.join(args.build, "src", "cxrtrack")
    work = args.work or tempfile.mkdtemp(prefix="cxr-reflim.")
    os.makedirs(work, exist_ok=True)
    db = os.path.join(work, "ref.sqlite")
    samples = os.path.join(work, "samples.csv")
    nih = os.path.join(work, "nih.csv")
    if not os.path.exists(db):
        with open(nih, "w") as f:
            f.write(run(["python3", os.path.join(ROOT, "tools", "replicate_manifest.py"), "--nih",
                         os.path.join(SHARED, "nih", "Data_Entry_2017_v2020.csv.gz"),
                         os.path.join(SHARED, "nih", "series1024"), "0"]))
        run([exe, "ingest", "--db", db, "--manifest", nih])
        cov = os.path.join(SHARED, "covid-series")
        run([exe, "ingest", "--db", db, "--manifest", os.path.join(cov, "metadata.csv"), "--images",
             os.path.join(cov, "images"), "--patient-prefix", "covid-", "--map",
             "patient_id=patientid,day_offset=offset,path=filename,view_position=view,"
             "age_years=age,finding_labels=finding"])
        run([exe, "ingest", "--db", db, "--manifest", os.path.join(SHARED, "brixia", "manifest.csv")])
    cfg = os.path.join(work, "calib.ini")
    with open(cfg, "w") as f:
        f.write("[progression]\ncalib_films=10000\ncalib_copies=2\n")
    if not os.path.exists(samples):
        run([exe, "calibrate", "--db", db, "--force", "--config", cfg, "--samples", samples])
    # the visit-to-visit limits: every consecutive pair of the reference series
    con = sqlite3.connect(db)
    if con.execute("SELECT count(*) FROM registrations").fetchone()[0] == 0:
        con.close()
        run([exe, "analyze", "--db", db, "--config", cfg])
        con = sqlite3.connect(db)
    model = con.execute("SELECT sha256 FROM models WHERE architecture NOT IN"
                        " ('cxr-lungnet', 'cxr-brixia-ridge') ORDER BY model_id DESC").fetchone()[0]
    limits = {s: (v, n, vl, vp) for s, v, n, vl, vp in con.execute(
        "SELECT signal, limit_value, n_copies, visit_limit, visit_pairs FROM retest_limits r"
        " JOIN models m USING (model_id) WHERE m.sha256 = ?", (model,))}
    by = defaultdict(lambda: defaultdict(list))
    with open(samples) as f:
        for r in csv.DictReader(f):
            by[r["signal"]][r["film_sha256"]].append(float(r["value"]))
    films = sorted({f for s in by.values() for f in s})
    print(f"reference store: {len(films)} films (one per patient), {len(by)} signals, "
          f"classifier {model[:12]}")
    rng = np.random.default_rng(2017)
    table = {}
    for n in NS:
        if n > len(films):
            break
        errs = []
        for sig, per in by.items():
            full = limits[sig][0]
            e = []
            for _ in range(300):
                pick = rng.choice(films, size=n, replace=False)
                v = [x for f in pick for x in per.get(f, [])]
                if not v:
                    continue
                lim = max(np.percentile(v, 95), floor_of(sig))
                e.append(abs(lim - full) / full)
            errs.append(np.percentile(e, 90) if e else np.inf)
        table[n] = (float(np.median(errs)), float(np.max(errs)))
        print(f"  n = {n:4d} films: 90th percentile of |relative error| of a limit, median over "
              f"signals {table[n][0]:.2f}, worst signal {table[n][1]:.2f}")
    min_films = next((n for n in NS if n in table and table[n][0] <= TOLERANCE), None)
    if min_films is None:
        raise SystemExit("no n reached the tolerance: more reference films needed")
    print(f"minimum films for a store's own limits: {min_films} (median 90th-percentile error "
          f"<= {TOLERANCE:.0%})")
    if args.dry_run:
        return
    with open(args.out, "w") as f:
        f.write("# cxrtrack reference test-retest limits (tools/reference_limits.py)\n")
        f.write(f"# classifier_sha256: {model}\n")
        f.write(f"# films: {len(films)}\n")
        f.write(f"# min_films: {min_films}\n")
        f.write("# source: first films of the NIH series1024 patients, the COVID-19 image collection"
                " series and the BrixIA development films, two re-posed copies each\n")
        f.write("# visit_limit: the spread of consecutive films of the reference series (empty:"
                " fewer than 30 pairs)\n")
        f.write("signal,limit_value,n_copies,visit_limit,visit_pairs\n")
        for sig in sorted(limits):
            v, n, vl, vp = limits[sig]
            vls = f"{vl:.6g}" if vl is not None else ""
            f.write(f"{sig},{v:.6g},{n},{vls},{vp if vl is not None else ''}\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
