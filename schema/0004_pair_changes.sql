-- SPDX-License-Identifier: MIT
-- 0004: what changed between registered visits (README, "Difference maps").
-- One row per registration that did not fail; the same pair registered as
-- both 'previous' and 'baseline' (visit 1) has the same numbers in both.

CREATE TABLE pair_changes (
  fixed_scan_id      INTEGER NOT NULL REFERENCES scans (scan_id),
  moving_scan_id     INTEGER NOT NULL REFERENCES scans (scan_id),
  kind               TEXT NOT NULL CHECK (kind IN ('previous', 'baseline')),
  change_score       REAL NOT NULL,   -- sum of (|d| - threshold) over changed px, px^2 of FIXED
  change_energy      REAL NOT NULL,   -- mean d^2 in the thorax mask, x 1e4
  changed_area_px    REAL NOT NULL,   -- px^2 of FIXED with |d| > threshold
  changed_area_mm2   REAL,            -- NULL when the pixel spacing is unknown
  peak_x_px          REAL NOT NULL,   -- strongest change, FIXED's pixels
  peak_y_px          REAL NOT NULL,
  peak_value         REAL NOT NULL,   -- signed d there (+: brighter now)
  threshold          REAL NOT NULL,   -- intensity units (0..1)
  noise_sigma        REAL NOT NULL,
  mask_area_px       REAL NOT NULL,
  embedding_distance REAL,            -- cosine distance of the two films' embeddings
  feature_change     REAL,            -- mean cosine distance of the registered feature maps
  model_id           INTEGER REFERENCES models (model_id),
  overlay_path       TEXT,            -- colour overlay PNG, relative to the database's folder
  map_path           TEXT,            -- signed map, float16 .npy, same
  elapsed_ms         REAL,
  method             TEXT NOT NULL,
  run_id             INTEGER REFERENCES runs (run_id),
  PRIMARY KEY (fixed_scan_id, moving_scan_id, kind),
  FOREIGN KEY (fixed_scan_id, moving_scan_id, kind)
    REFERENCES registrations (fixed_scan_id, moving_scan_id, kind)
) WITHOUT ROWID;

CREATE TABLE pair_finding_changes (
  fixed_scan_id     INTEGER NOT NULL,
  moving_scan_id    INTEGER NOT NULL,
  kind              TEXT NOT NULL,
  model_id          INTEGER NOT NULL REFERENCES models (model_id),
  finding           TEXT NOT NULL,
  probability_delta REAL NOT NULL,    -- moving - fixed
  heatmap_delta_max REAL NOT NULL,    -- largest rise of the activation map, registered films
  PRIMARY KEY (fixed_scan_id, moving_scan_id, kind, model_id, finding),
  FOREIGN KEY (fixed_scan_id, moving_scan_id, kind)
    REFERENCES pair_changes (fixed_scan_id, moving_scan_id, kind)
) WITHOUT ROWID;
