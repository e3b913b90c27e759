-- SPDX-License-Identifier: MIT
-- 0003: classifier results. A model is identified by the sha256 of its
-- file; every result names the model that produced it.

CREATE TABLE models (
  model_id      INTEGER PRIMARY KEY,
  name          TEXT NOT NULL,
  architecture  TEXT NOT NULL,
  sha256        TEXT NOT NULL UNIQUE,      -- of the safetensors file
  classes       TEXT NOT NULL,             -- '|'-separated, in output order
  metadata      TEXT,                      -- the file's __metadata__ as JSON
  input_size    INTEGER NOT NULL,
  embedding_dim INTEGER NOT NULL,
  added_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE embeddings (
  scan_id   INTEGER NOT NULL REFERENCES scans (scan_id),
  model_id  INTEGER NOT NULL REFERENCES models (model_id),
  dim       INTEGER NOT NULL,
  vector    BLOB NOT NULL,                 -- dim little-endian float32
  run_id    INTEGER REFERENCES runs (run_id),
  PRIMARY KEY (scan_id, model_id),
  CHECK (length (vector) = 4 * dim)
) WITHOUT ROWID;

CREATE TABLE predictions (
  scan_id      INTEGER NOT NULL REFERENCES scans (scan_id),
  model_id     INTEGER NOT NULL REFERENCES models (model_id),
  finding      TEXT NOT NULL,
  probability  REAL NOT NULL,              -- sigmoid output, 0..1
  PRIMARY KEY (scan_id, model_id, finding)
) WITHOUT ROWID;

-- Class activation maps at the model's feature resolution: width x height
-- little-endian float32, row-major, in logit units (their mean is the logit).
CREATE TABLE heatmaps (
  scan_id   INTEGER NOT NULL REFERENCES scans (scan_id),
  model_id  INTEGER NOT NULL REFERENCES models (model_id),
  finding   TEXT NOT NULL,
  width     INTEGER NOT NULL,
  height    INTEGER NOT NULL,
  data      BLOB NOT NULL,
  PRIMARY KEY (scan_id, model_id, finding),
  CHECK (length (data) = 4 * width * height)
) WITHOUT ROWID;

CREATE VIEW scan_predictions AS
  SELECT s.image_index, s.patient_id, s.visit, m.name AS model, p.finding, p.probability,
         s.scan_id, m.model_id
    FROM predictions p JOIN scans s USING (scan_id) JOIN models m USING (model_id);
