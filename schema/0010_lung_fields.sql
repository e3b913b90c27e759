-- The lung fields of each frontal film (src/lungs.c), one row per film and
-- lung segmenter, and which region the difference maps compared.
CREATE TABLE lung_fields (
  scan_id        INTEGER NOT NULL REFERENCES scans (scan_id),
  model_id       INTEGER NOT NULL REFERENCES models (model_id),
  right_area_px  REAL NOT NULL,           -- the patient's right lung (image left), px of the film
  left_area_px   REAL NOT NULL,
  right_area_mm2 REAL,                    -- NULL when the pixel spacing is unknown
  left_area_mm2  REAL,
  lung_fraction  REAL NOT NULL,           -- both lungs over the film's area
  bbox_x0        INTEGER,                 -- both lungs' bounding box, px (NULL: no lung found)
  bbox_y0        INTEGER,
  bbox_x1        INTEGER,
  bbox_y1        INTEGER,
  quality        REAL NOT NULL,           -- 0..1
  status         TEXT NOT NULL CHECK (status IN ('ok', 'implausible')),
  reason         TEXT,                    -- why implausible
  mask_path      TEXT,                    -- 8-bit PNG, 255 lung, relative to STORE.artifacts/
  elapsed_ms     REAL,
  run_id         INTEGER REFERENCES runs (run_id),
  PRIMARY KEY (scan_id, model_id)
) WITHOUT ROWID;

-- 'lungs': the map compares FIXED's lung fields that MOVING's, warped,
-- also covers; 'thorax': the older window (no plausible lung fields).
ALTER TABLE pair_changes ADD COLUMN mask_kind TEXT;
