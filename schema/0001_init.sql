-- SPDX-License-Identifier: MIT
-- 0001: the series store. Patients, their scans in visit order, the
-- findings named on each scan, and the provenance of every run.
-- This is cxrtrack's stable SQL interface: later migrations add tables
-- and views but never rename or drop what is here (README, "SQL interface").

CREATE TABLE runs (
  run_id      INTEGER PRIMARY KEY,
  command     TEXT NOT NULL,              -- 'ingest', 'analyze', ...
  argv        TEXT NOT NULL,              -- the whole command line
  version     TEXT NOT NULL,              -- cxrtrack version that ran
  started_at  TEXT NOT NULL,              -- ISO 8601 UTC
  ended_at    TEXT,                       -- NULL while running or if killed
  status      TEXT NOT NULL DEFAULT 'running'
              CHECK (status IN ('running', 'done', 'failed')),
  n_rows      INTEGER NOT NULL DEFAULT 0, -- input rows read
  n_ok        INTEGER NOT NULL DEFAULT 0, -- images stored as ok
  n_missing   INTEGER NOT NULL DEFAULT 0, -- rows stored without a file
  n_invalid   INTEGER NOT NULL DEFAULT 0, -- files that could not be read
  n_unchanged INTEGER NOT NULL DEFAULT 0, -- already in the store, same content
  n_rejected  INTEGER NOT NULL DEFAULT 0, -- input rows not stored (bad fields)
  n_conflicts INTEGER NOT NULL DEFAULT 0, -- same name, different content
  messages    TEXT                        -- first errors, one per line
);

CREATE TABLE patients (
  patient_id  TEXT PRIMARY KEY,
  sex         TEXT,                       -- 'M', 'F' or NULL
  n_scans     INTEGER NOT NULL DEFAULT 0, -- every scan row, any status or view
  n_frontal   INTEGER NOT NULL DEFAULT 0, -- frontal scans with status 'ok'
  first_age_years REAL,                   -- age at the first visit
  last_age_years  REAL                    -- age at the last visit
) WITHOUT ROWID;

CREATE TABLE scans (
  scan_id        INTEGER PRIMARY KEY,
  image_index    TEXT NOT NULL UNIQUE,    -- file name (NIH 'Image Index')
  patient_id     TEXT NOT NULL REFERENCES patients (patient_id),
  visit          INTEGER,                 -- 0-based order within the patient
  follow_up      INTEGER,                 -- the source's own visit number
  study_date     TEXT,                    -- ISO 8601 date, when known
  day_offset     REAL,                    -- days from a patient-specific origin
  age_years      REAL,
  sex            TEXT,
  view_position  TEXT,                    -- as given: PA, AP, AP Supine, L ...
  view_kind      TEXT NOT NULL            -- PA | AP | lateral | unknown
                 CHECK (view_kind IN ('PA', 'AP', 'lateral', 'unknown')),
  finding_labels TEXT,                    -- '|'-separated, as given
  orig_width     INTEGER,                 -- NIH: size of the original film
  orig_height    INTEGER,
  orig_spacing_x_mm REAL,                 -- NIH: pixel spacing of the original
  orig_spacing_y_mm REAL,
  path           TEXT,                    -- file read, NULL if missing
  sha256         TEXT,                    -- of the file's bytes
  width          INTEGER,                 -- of the stored film, px
  height         INTEGER,
  bit_depth      INTEGER,                 -- PNG IHDR bit depth
  color_type     TEXT,                    -- gray | gray+alpha | rgb | rgba | palette
  pixel_spacing_mm REAL,                  -- of the stored film, NULL if unknown
  status         TEXT NOT NULL CHECK (status IN ('ok', 'missing', 'invalid')),
  error          TEXT,                    -- why a file is invalid
  run_id         INTEGER REFERENCES runs (run_id),
  CHECK (status <> 'ok' OR sha256 IS NOT NULL)
);
CREATE INDEX scans_patient_visit ON scans (patient_id, visit);
CREATE INDEX scans_sha256 ON scans (sha256);

CREATE TABLE scan_findings (
  scan_id  INTEGER NOT NULL REFERENCES scans (scan_id) ON DELETE CASCADE,
  finding  TEXT NOT NULL,
  PRIMARY KEY (scan_id, finding)
) WITHOUT ROWID;
CREATE INDEX scan_findings_finding ON scan_findings (finding, scan_id);

-- Frontal films are the ones cxrtrack compares: PA, AP, or a view the
-- source did not name. Lateral films are stored but never compared.
CREATE VIEW frontal_scans AS
  SELECT * FROM scans
   WHERE status = 'ok' AND view_kind IN ('PA', 'AP', 'unknown');

-- Every scan with its patient's previous frontal film and the baseline
-- (first) frontal film: the pairs registration and change maps use.
CREATE VIEW patient_series AS
  SELECT s.scan_id, s.image_index, s.patient_id, s.visit, s.view_kind,
         s.status,
         s.view_kind IN ('PA', 'AP', 'unknown') AS is_frontal,
         (SELECT p.scan_id FROM frontal_scans p
           WHERE p.patient_id = s.patient_id AND p.visit < s.visit
           ORDER BY p.visit DESC LIMIT 1) AS previous_scan_id,
         (SELECT b.scan_id FROM frontal_scans b
           WHERE b.patient_id = s.patient_id
           ORDER BY b.visit LIMIT 1) AS baseline_scan_id
    FROM scans s;
