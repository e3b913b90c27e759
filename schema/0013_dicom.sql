-- SPDX-License-Identifier: MIT
-- 0013: films read from DICOM (cxrtrack ingest --dicom). A film's identity
-- is its SOP Instance UID, stored as scans.image_index; the same UID
-- ingested twice is the same film. What the header says beyond the scans
-- columns is here, one row per DICOM scan. No patient name or other direct
-- identifier is ever read or stored (README, "From a PACS export").

-- The time of day a film was taken, HH:MM:SS[.ffffff], on scans.study_date:
-- visits on one day are ordered by it (NULL for sources without times).
ALTER TABLE scans ADD COLUMN study_time TEXT;

CREATE TABLE dicom_scans (
  scan_id             INTEGER PRIMARY KEY REFERENCES scans (scan_id) ON DELETE CASCADE,
  sop_instance_uid    TEXT NOT NULL,      -- (0008,0018), = scans.image_index
  sop_class_uid       TEXT,               -- (0008,0016)
  study_instance_uid  TEXT,               -- (0020,000D)
  series_instance_uid TEXT,               -- (0020,000E)
  date_source         TEXT                -- which date and time gave study_date / study_time
                      CHECK (date_source IN ('acquisition', 'content', 'study', 'series')),
  study_date          TEXT,               -- (0008,0020) itself, ISO 8601
  modality            TEXT,               -- (0008,0060): CR, DX ...
  body_part           TEXT,               -- (0018,0015)
  image_laterality    TEXT,               -- (0020,0062)
  manufacturer        TEXT,               -- (0008,0070)
  photometric         TEXT,               -- (0028,0004): MONOCHROME1 is read inverted
  bits_stored         INTEGER,            -- (0028,0101)
  transfer_syntax     TEXT,               -- UID the file is encoded in
  spacing_source      TEXT                -- where pixel_spacing_mm came from:
                      CHECK (spacing_source IN ('pixel', 'imager/magnification', 'imager')),
  voi                 TEXT NOT NULL       -- the window ingest read it with (--voi)
                      CHECK (voi IN ('first', 'none', 'auto'))
);
CREATE INDEX dicom_scans_study ON dicom_scans (study_instance_uid);
