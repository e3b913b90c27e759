#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Real change on the dated COVID-19 image collection series
(../shared/data/covid-series): do cxrtrack's pair signals grow with the
time between two films?

These series carry one finding per patient (COVID-19, SARS, ...), not per
film, so there is no CHANGED/STABLE truth as in bench/real_change.py. What
they do have is days: a lung disease evolves over days to weeks, so over
consecutive same-view films of a patient a signal that measures change
should, on the whole, be larger for pairs further apart. Printed, for each
signal: Spearman's rho of (days between the films, signal) with its
p-value and the pairs it covers, and the mean signal for pairs up to 3
days apart against pairs over 7 days apart. The films are figures from
publications and case sites (different sizes, crops, exposures, burned-in
labels), so expect weak figures; read them beside real_change.py's.

Usage: bench/covid_change.py [--build DIR] [--db PATH] [--reuse]
"""
import os, sqlite3, subprocess, sys, tempfile, time

import numpy as np
from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
D = os.path.join(ROOT, "..", "shared", "data", "covid-series")


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def main():
    build = arg("--build", os.path.join(ROOT, "build"))
    X = os.path.join(build, "src", "cxrtrack")
    subprocess.run(["sh", os.path.join(HERE, "machine.sh")])
    db = arg("--db") or os.path.join(tempfile.mkdtemp(prefix="cxr-covid-"), "c.sqlite")
    if not ("--reuse" in sys.argv and os.path.exists(db)):
        t0 = time.time()
        subprocess.run([X, "ingest", "--db", db, "--manifest", os.path.join(D, "metadata.csv"),
                        "--images", os.path.join(D, "images"), "--patient-prefix", "covid-",
                        "--map", "patient_id=patientid,day_offset=offset,path=filename,view_position=view,"
                        "age_years=age,finding_labels=finding"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = subprocess.run([X, "analyze", "--db", db], check=True, capture_output=True, text=True)
        print(r.stdout.strip())
        print(f"(ingest + analyze {time.time() - t0:.0f} s)\n")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("""
      WITH f AS (SELECT scan_id, patient_id, day_offset,
                        lag(scan_id) OVER w AS prev, lag(day_offset) OVER w AS prev_day
                   FROM frontal_scans WINDOW w AS (PARTITION BY patient_id, view_kind ORDER BY visit))
      SELECT f.patient_id, f.day_offset - f.prev_day, v.change_in_limits,
             s.max_abs_probability_delta, s.embedding_distance,
             max(abs(s.lung_area_change_right), abs(s.lung_area_change_left)),
             c.change_score, c.change_energy
        FROM f JOIN pair_signals s ON s.fixed_scan_id = f.prev AND s.moving_scan_id = f.scan_id
                                  AND s.kind IN ('previous', 'same_view')
        LEFT JOIN pair_probability_change v USING (fixed_scan_id, moving_scan_id, kind, model_id)
        LEFT JOIN pair_changes c ON c.fixed_scan_id = s.fixed_scan_id
                                AND c.moving_scan_id = s.moving_scan_id AND c.kind = 'previous'
       WHERE f.prev IS NOT NULL AND f.prev_day IS NOT NULL""").fetchall()
    pats = {r[0] for r in rows}
    print(f"{len(rows)} consecutive same-view pairs with days between them, {len(pats)} patients; "
          f"days apart: median {np.median([r[1] for r in rows]):.0f}, range {min(r[1] for r in rows):.0f}"
          f"-{max(r[1] for r in rows):.0f}\n")
    names = ["max |probability delta| / its limit", "max |probability delta|", "embedding_distance",
             "max |lung area change|", "change_score", "change_energy"]
    print(f"{'signal':38s} {'rho':>6s} {'p':>7s} {'pairs':>6s} {'mean <=3 d':>11s} {'mean >7 d':>10s}")
    for k, name in enumerate(names):
        xy = [(r[1], r[2 + k]) for r in rows if r[2 + k] is not None]
        if len(xy) < 3:
            print(f"{name:38s} {'-':>6s}")
            continue
        rho, p = stats.spearmanr([a for a, _ in xy], [b for _, b in xy])
        near = [b for a, b in xy if a <= 3]
        far = [b for a, b in xy if a > 7]
        print(f"{name:38s} {rho:6.3f} {p:7.3f} {len(xy):6d} {np.mean(near) if near else float('nan'):11.4g} "
              f"{np.mean(far) if far else float('nan'):10.4g}")
    kinds = con.execute("SELECT kind, count(*) FROM progression_flags GROUP BY 1 ORDER BY 1").fetchall()
    print("\nflag rows:", ", ".join(f"{k} {n}" for k, n in kinds))
    print(f"(store: {db})")


if __name__ == "__main__":
    main()
