-- SPDX-License-Identifier: MIT
-- 0002: registrations. Every frontal film (moving) against its patient's
-- previous frontal film and against the baseline (first) frontal film
-- (fixed). Transform convention: README, "Registration".

CREATE TABLE registrations (
  fixed_scan_id   INTEGER NOT NULL REFERENCES scans (scan_id),
  moving_scan_id  INTEGER NOT NULL REFERENCES scans (scan_id),
  kind            TEXT NOT NULL CHECK (kind IN ('previous', 'baseline')),
  dx_px           REAL,                 -- p' = s R(angle) p + (dx, dy), px
  dy_px           REAL,
  angle_deg       REAL,
  scale           REAL,
  confidence      REAL,                 -- 0..1
  status          TEXT NOT NULL CHECK (status IN ('ok', 'low_confidence', 'failed')),
  cross_view      INTEGER NOT NULL,     -- 1: PA against AP; shown, never trusted as ok
  elapsed_ms      REAL,
  method          TEXT NOT NULL,        -- algorithm and version
  ncc_before      REAL,                 -- structure NCC in the thorax window
  ncc_after       REAL,
  psr             REAL,                 -- translation peak-to-sidelobe ratio
  asymmetry_px    REAL,                 -- forward vs backward estimate
  transitivity_px REAL,                 -- baseline rows: vs the chain through the previous film
  reason          TEXT,                 -- why not ok
  run_id          INTEGER REFERENCES runs (run_id),
  PRIMARY KEY (fixed_scan_id, moving_scan_id, kind)
) WITHOUT ROWID;
CREATE INDEX registrations_moving ON registrations (moving_scan_id);

-- Pairs still to register: frontal films with a previous or baseline film
-- and no registration of that kind yet.
CREATE VIEW pending_registrations AS
  SELECT ps.patient_id, ps.visit, ps.previous_scan_id AS fixed_scan_id,
         ps.scan_id AS moving_scan_id, 'previous' AS kind
    FROM patient_series ps
   WHERE ps.is_frontal AND ps.status = 'ok' AND ps.previous_scan_id IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.fixed_scan_id = ps.previous_scan_id
                       AND r.moving_scan_id = ps.scan_id AND r.kind = 'previous')
  UNION ALL
  SELECT ps.patient_id, ps.visit, ps.baseline_scan_id, ps.scan_id, 'baseline'
    FROM patient_series ps
   WHERE ps.is_frontal AND ps.status = 'ok' AND ps.baseline_scan_id IS NOT NULL
     AND ps.baseline_scan_id <> ps.scan_id
     AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.fixed_scan_id = ps.baseline_scan_id
                       AND r.moving_scan_id = ps.scan_id AND r.kind = 'baseline');
