-- SPDX-License-Identifier: MIT
-- 0014: stores merged into this one (cxrtrack merge). A shard store is
-- merged again only when its runs changed since (its fingerprint), so a
-- merge that was killed, or run twice, ends with the same rows.
CREATE TABLE merged_stores (
  source      TEXT PRIMARY KEY,       -- the merged store's absolute path
  fingerprint TEXT NOT NULL,          -- its schema version and runs, hashed
  n_scans     INTEGER NOT NULL,       -- its scans now in this store
  n_conflicts INTEGER NOT NULL,       -- its scans left out: same name, other content
  run_id      INTEGER REFERENCES runs (run_id),
  merged_at   TEXT NOT NULL           -- ISO 8601 UTC
) WITHOUT ROWID;
