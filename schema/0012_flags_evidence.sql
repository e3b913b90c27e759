-- Flags that name their evidence, an 'unconfirmed_change' kind, limits
-- from the store's own visits, and the signals every pair has whatever
-- its registration (README, "Progression").

-- The visit-to-visit limit of each signal: from the store's consecutive
-- same-view pairs, 1.96 x 1.4826 x the median absolute deviation of the
-- signal's change between them (the spread real visits have, which
-- re-posed copies of one film underestimate); NULL with too few pairs.
-- A flag uses the larger of limit_value and visit_limit.
ALTER TABLE retest_limits ADD COLUMN visit_limit REAL;
ALTER TABLE retest_limits ADD COLUMN visit_pairs INTEGER;

CREATE TABLE progression_flags_new (
  patient_id   TEXT NOT NULL REFERENCES patients (patient_id),
  signal       TEXT NOT NULL,
  view_kind    TEXT NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('slow_progression', 'acute_change',
                                               'unconfirmed_change', 'improving', 'stable',
                                               'insufficient_visits')),
  n_visits     INTEGER NOT NULL,     -- films the signal has a value at (used)
  first_visit  INTEGER NOT NULL,
  last_visit   INTEGER NOT NULL,
  time_axis    TEXT NOT NULL CHECK (time_axis IN ('days', 'visit')),
  tau          REAL,
  p_value      REAL,
  slope        REAL,
  slope_low    REAL,
  slope_high   REAL,
  retest_limit REAL,                 -- the limit used
  acute_limit  REAL,
  event_visit  INTEGER,
  evidence     TEXT NOT NULL,
  model_id     INTEGER REFERENCES models (model_id),
  run_id       INTEGER REFERENCES runs (run_id),
  limit_source TEXT,                 -- 'retest' (re-posed copies) or 'visits' (the store's pairs)
  step_from_visit INTEGER,           -- acute or unconfirmed: the step's two films
  step_to_visit   INTEGER,
  left_out     TEXT,                 -- films of the series without a value, and why
  PRIMARY KEY (patient_id, signal, view_kind)
) WITHOUT ROWID;
INSERT INTO progression_flags_new (patient_id, signal, view_kind, kind, n_visits, first_visit,
       last_visit, time_axis, tau, p_value, slope, slope_low, slope_high, retest_limit,
       acute_limit, event_visit, evidence, model_id, run_id)
  SELECT patient_id, signal, view_kind, kind, n_visits, first_visit, last_visit, time_axis, tau,
         p_value, slope, slope_low, slope_high, retest_limit, acute_limit, event_visit, evidence,
         model_id, run_id
    FROM progression_flags;
DROP VIEW flagged_patients;
DROP TABLE progression_flags;
ALTER TABLE progression_flags_new RENAME TO progression_flags;

CREATE VIEW flagged_patients AS
  SELECT patient_id,
         count(*) AS n_flags,
         CASE WHEN sum(kind = 'acute_change') > 0 THEN 'acute_change'
              WHEN sum(kind = 'slow_progression') > 0 THEN 'slow_progression'
              ELSE 'unconfirmed_change' END AS strongest_kind,
         min(p_value) AS min_p_value,
         max(n_visits) AS n_visits,
         group_concat(signal, ', ') AS signals
    FROM progression_flags
   WHERE kind IN ('slow_progression', 'acute_change', 'unconfirmed_change')
   GROUP BY patient_id;

-- Every registration row's pair, and every film's previous film of the
-- same view kind (kind 'same_view', where that is not its previous film:
-- a PA film after an AP one), gets the signals that need no registration,
-- whatever its status: the classifier's embedding distance and
-- probability changes, and the lung areas' change.
CREATE TABLE pair_signals (
  fixed_scan_id  INTEGER NOT NULL REFERENCES scans (scan_id),
  moving_scan_id INTEGER NOT NULL REFERENCES scans (scan_id),
  kind           TEXT NOT NULL CHECK (kind IN ('previous', 'baseline', 'same_view')),
  model_id       INTEGER NOT NULL REFERENCES models (model_id),
  embedding_distance REAL,           -- cosine distance of the two films' embeddings
  max_abs_probability_delta REAL,    -- over the findings, |p(moving) - p(fixed)|
  max_probability_rise REAL,         -- the largest p(moving) - p(fixed)
  rise_finding   TEXT,               -- its finding
  lung_area_change_right REAL,       -- area(moving) / area(fixed) - 1, NULL without lungs
  lung_area_change_left  REAL,
  run_id         INTEGER REFERENCES runs (run_id),
  PRIMARY KEY (fixed_scan_id, moving_scan_id, kind, model_id)
) WITHOUT ROWID;

-- Where a difference map's change lies: each lung (FIXED's; the right lung
-- is the image's left) in thirds of its height, for maps compared inside
-- the lungs (pair_changes.mask_kind 'lungs').
CREATE TABLE pair_change_regions (
  fixed_scan_id  INTEGER NOT NULL REFERENCES scans (scan_id),
  moving_scan_id INTEGER NOT NULL REFERENCES scans (scan_id),
  kind           TEXT NOT NULL CHECK (kind IN ('previous', 'baseline')),
  region         TEXT NOT NULL CHECK (region IN ('right_upper', 'right_middle', 'right_lower',
                                                  'left_upper', 'left_middle', 'left_lower')),
  area_px        REAL NOT NULL,      -- px^2 of FIXED compared there
  change_score   REAL NOT NULL,      -- as pair_changes.change_score, over the zone
  mean_d         REAL,               -- signed mean of the map there: + brighter now
  PRIMARY KEY (fixed_scan_id, moving_scan_id, kind, region)
) WITHOUT ROWID;
