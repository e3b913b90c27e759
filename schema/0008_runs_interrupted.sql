-- A run whose process died (killed, power cut) is marked 'interrupted' by
-- the next command that takes the store's writer lock. SQLite cannot
-- change a CHECK constraint in place: the table is rebuilt (migrations run
-- with foreign keys off, and are checked for intact references after).
CREATE TABLE runs_new (
  run_id      INTEGER PRIMARY KEY,
  command     TEXT NOT NULL,              -- 'ingest', 'analyze', ...
  argv        TEXT NOT NULL,              -- the whole command line
  version     TEXT NOT NULL,              -- cxrtrack version that ran
  started_at  TEXT NOT NULL,              -- ISO 8601 UTC
  ended_at    TEXT,                       -- NULL while running, or if it died
  status      TEXT NOT NULL DEFAULT 'running'
              CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
  n_rows      INTEGER NOT NULL DEFAULT 0, -- input rows read
  n_ok        INTEGER NOT NULL DEFAULT 0, -- images stored as ok
  n_missing   INTEGER NOT NULL DEFAULT 0, -- rows stored without a file
  n_invalid   INTEGER NOT NULL DEFAULT 0, -- files that could not be read
  n_unchanged INTEGER NOT NULL DEFAULT 0, -- already in the store, same content
  n_rejected  INTEGER NOT NULL DEFAULT 0, -- input rows not stored (bad fields)
  n_conflicts INTEGER NOT NULL DEFAULT 0, -- same name, different content
  messages    TEXT                        -- first errors, one per line
);
INSERT INTO runs_new SELECT * FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
