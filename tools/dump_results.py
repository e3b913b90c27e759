#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Every result table of a cxrtrack store as sorted text, for comparing two
stores row for row (a refactor must leave them identical).

Scan ids become image indexes and model ids model names (ingest's threads
number the scans in any order), so two stores made in different orders
compare equal; what varies from run to run by nature is
left out (run ids, timings, timestamps, the command line). Blobs (embedding
vectors, heatmaps) are printed as their SHA-256, and so are the artifact
files a row names (overlays, maps), read from the store's folder.

Usage: tools/dump_results.py STORE.sqlite > dump.txt
       diff <(tools/dump_results.py a.sqlite) <(tools/dump_results.py b.sqlite)
"""
import hashlib, os, sqlite3, sys

VOLATILE = {"run_id", "elapsed_ms", "started_at", "ended_at", "added_at", "argv", "version"}
SCAN_COLS = {"scan_id", "fixed_scan_id", "moving_scan_id"}


def main(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    base = os.path.dirname(os.path.abspath(path))
    names = dict(db.execute("SELECT scan_id, image_index FROM scans"))
    models = dict(db.execute("SELECT model_id, name || ':' || substr(sha256, 1, 12) FROM models"))
    tables = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name NOT IN ('runs') ORDER BY name")]
    for t in tables:
        cols = [r[1] for r in db.execute(f"PRAGMA table_info({t})")]
        keep = [c for c in cols if c not in VOLATILE and not (t == "models" and c == "model_id")
                and not (t == "scans" and c == "scan_id")]
        rows = []
        for r in db.execute(f"SELECT {', '.join(keep)} FROM {t}"):
            out = []
            for c, v in zip(keep, r):
                if c in SCAN_COLS and t != "scans":
                    v = names.get(v, v)
                elif c == "model_id":
                    v = models.get(v, v)
                elif c.endswith("_path") and isinstance(v, str) and t != "scans":
                    f = v if os.path.isabs(v) else os.path.join(base, v)
                    h = hashlib.sha256(open(f, "rb").read()).hexdigest()[:16] if os.path.exists(f) else "absent"
                    v = f"{v}#{h}"
                if isinstance(v, bytes):
                    v = "sha256:" + hashlib.sha256(v).hexdigest()[:16]
                elif isinstance(v, float):
                    v = repr(v)
                out.append(f"{c}={v}")
            rows.append(" ".join(out))
        rows.sort()
        print(f"== {t} ({len(rows)} rows)")
        for r in rows:
            print(r)


if __name__ == "__main__":
    main(sys.argv[1])
