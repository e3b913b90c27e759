#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What a registration's status says about a film of the wrong patient.

Pairs of films of two different patients of ../shared/data/nih/series1024,
of one view kind (PA with PA, AP with AP), drawn at random (a fixed seed),
each registered as analyze registers a real pair (`cxrtrack register --db`
on a store of series1024: the films' pixel aspects and lung fields). The
status says whether the lungs line up after warping, not whether the two
films are of one patient: the count of 'ok' among strangers is how little
it says about that (analyze's chain checks, "not chaining", are the
evidence of a wrong film: tests/cli/chains.sh).

Usage: bench/register_strangers.py [--build DIR] [--pairs N] [--lung-model FILE]
"""
import json, os, random, sqlite3, subprocess, sys, tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
D = os.path.join(ROOT, "..", "shared", "data", "nih")


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def main():
    X = os.path.join(arg("--build", os.path.join(ROOT, "build")), "src", "cxrtrack")
    n = int(arg("--pairs", "120"))
    subprocess.run(["sh", os.path.join(HERE, "machine.sh")])
    db = os.path.join(tempfile.mkdtemp(prefix="cxr-strangers-"), "s.sqlite")
    subprocess.run([X, "ingest", "--db", db, "--nih", os.path.join(D, "Data_Entry_2017_v2020.csv.gz"),
                    "--images", os.path.join(D, "series1024")], check=True, stdout=subprocess.DEVNULL)
    con = sqlite3.connect(db)
    films = con.execute("SELECT image_index, patient_id, view_kind FROM frontal_scans"
                        " ORDER BY image_index").fetchall()
    con.close()
    rng = random.Random(5)
    pairs = []
    while len(pairs) < n:
        a, b = rng.sample(films, 2)
        if a[1] != b[1] and a[2] == b[2]:
            pairs.append((a[0], b[0]))
    extra = ["--lung-model", arg("--lung-model")] if arg("--lung-model") else []

    def reg(p):
        r = subprocess.run([X, "register", "--db", db, p[0], p[1], "--format", "json"] + extra,
                           capture_output=True, text=True)
        try:  # a failed registration prints its row and exits 1
            return json.loads(r.stdout)["status"]
        except ValueError:
            return "error: " + r.stderr.strip()
    with ThreadPoolExecutor(2) as ex:
        status = list(ex.map(reg, pairs))
    c = Counter(status)
    print(f"{n} pairs of films of two different patients, one view kind (seed 5): "
          + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    print(f"'ok' for {c['ok']} of {n} ({100 * c['ok'] / n:.0f} %): the status is not a check of "
          "the patient")


if __name__ == "__main__":
    main()
