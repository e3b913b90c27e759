-- SPDX-License-Identifier: MIT
-- 0020: severity as radiologists score it, the Brixia score (src/severity.c).
-- Each frontal film's six lung zones (A, B, C: upper, middle, lower zone of
-- the patient's right lung, image left; D, E, F: of the left lung), each
-- 0 (clear) to 3 (alveolar predominance), and the global 0-18, by a
-- zone-score head (a row of models, architecture cxr-brixia-ridge, that
-- names the classifier whose features it reads).

CREATE TABLE film_severity (
  scan_id      INTEGER NOT NULL REFERENCES scans (scan_id),
  model_id     INTEGER NOT NULL REFERENCES models (model_id), -- the head
  global       REAL NOT NULL CHECK (global BETWEEN 0 AND 18),
  status       TEXT NOT NULL CHECK (status IN ('ok', 'implausible')),
  reason       TEXT,                      -- why implausible
  zone_method  TEXT NOT NULL,             -- thirds, thirds-mirrored or fixed
  run_id       INTEGER REFERENCES runs (run_id),
  PRIMARY KEY (scan_id, model_id)
) WITHOUT ROWID;

CREATE TABLE zone_scores (
  scan_id   INTEGER NOT NULL REFERENCES scans (scan_id),
  model_id  INTEGER NOT NULL REFERENCES models (model_id),
  zone      TEXT NOT NULL CHECK (zone IN ('A', 'B', 'C', 'D', 'E', 'F')),
  score     REAL NOT NULL CHECK (score BETWEEN 0 AND 3),
  row0      INTEGER NOT NULL,             -- the zone's first and last rows, film px
  row1      INTEGER NOT NULL,
  area_px   REAL NOT NULL,
  PRIMARY KEY (scan_id, model_id, zone)
) WITHOUT ROWID;

-- One row per scored film, its zones side by side.
CREATE VIEW scan_severity AS
  SELECT s.patient_id, s.visit, s.image_index, s.study_date, m.name AS model, f.global,
         max(CASE z.zone WHEN 'A' THEN z.score END) AS A,
         max(CASE z.zone WHEN 'B' THEN z.score END) AS B,
         max(CASE z.zone WHEN 'C' THEN z.score END) AS C,
         max(CASE z.zone WHEN 'D' THEN z.score END) AS D,
         max(CASE z.zone WHEN 'E' THEN z.score END) AS E,
         max(CASE z.zone WHEN 'F' THEN z.score END) AS F,
         f.status, f.reason, f.zone_method, s.scan_id, f.model_id
    FROM film_severity f JOIN scans s USING (scan_id) JOIN models m USING (model_id)
    JOIN zone_scores z ON z.scan_id = f.scan_id AND z.model_id = f.model_id
   GROUP BY f.scan_id, f.model_id;
