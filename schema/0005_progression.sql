-- SPDX-License-Identifier: MIT
-- 0005: progression flags (README, "Progression").

-- Test-retest limits: how much a signal moves between a film and re-posed,
-- re-exposed copies of itself (95th percentile of |change|), per model.
CREATE TABLE retest_limits (
  model_id  INTEGER NOT NULL REFERENCES models (model_id),
  signal    TEXT NOT NULL,          -- 'probability:<finding>', 'embedding_distance', 'change_score'
  limit_value REAL NOT NULL,
  n_copies  INTEGER NOT NULL,       -- film/copy pairs it was derived from
  method    TEXT NOT NULL,
  PRIMARY KEY (model_id, signal)
) WITHOUT ROWID;

CREATE TABLE progression_flags (
  patient_id   TEXT NOT NULL REFERENCES patients (patient_id),
  signal       TEXT NOT NULL,        -- as in retest_limits
  view_kind    TEXT NOT NULL,        -- series of one view kind at a time
  kind         TEXT NOT NULL CHECK (kind IN ('slow_progression', 'acute_change', 'improving',
                                               'stable', 'insufficient_visits')),
  n_visits     INTEGER NOT NULL,
  first_visit  INTEGER NOT NULL,     -- scans.visit of the first and last film used
  last_visit   INTEGER NOT NULL,
  time_axis    TEXT NOT NULL CHECK (time_axis IN ('days', 'visit')),
  tau          REAL,                 -- Mann-Kendall tau-b
  p_value      REAL,                 -- Mann-Kendall, two-sided
  slope        REAL,                 -- Theil-Sen, signal units per day or per visit
  slope_low    REAL,                 -- 95 % interval
  slope_high   REAL,
  retest_limit REAL,                 -- the limit used
  acute_limit  REAL,
  event_visit  INTEGER,              -- first visit of a confirmed change beyond the limit
  evidence     TEXT NOT NULL,        -- plain words, with the films
  model_id     INTEGER REFERENCES models (model_id),
  run_id       INTEGER REFERENCES runs (run_id),
  PRIMARY KEY (patient_id, signal, view_kind)
) WITHOUT ROWID;

CREATE VIEW flagged_patients AS
  SELECT patient_id,
         count(*) AS n_flags,
         CASE WHEN sum(kind = 'acute_change') > 0 THEN 'acute_change' ELSE 'slow_progression' END
           AS strongest_kind,
         min(p_value) AS min_p_value,
         max(n_visits) AS n_visits,
         group_concat(signal, ', ') AS signals
    FROM progression_flags
   WHERE kind IN ('slow_progression', 'acute_change')
   GROUP BY patient_id;
