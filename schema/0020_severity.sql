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
  SELECT s.patient_id, s.visit, s.image_index, s.study_date, s.view_position, m.name AS model,
         f.global,
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

-- Each plausible film's scores in one column: zone 'global' or 'A'..'F'.
CREATE VIEW film_severity_scores AS
  SELECT scan_id, model_id, 'global' AS zone, global AS score
    FROM film_severity WHERE status = 'ok'
  UNION ALL
  SELECT z.scan_id, z.model_id, z.zone, z.score
    FROM zone_scores z JOIN film_severity f USING (scan_id, model_id) WHERE f.status = 'ok';

-- Per registered pair (previous and baseline), the change of the global
-- and of each zone, later minus earlier, with the limit the flags use for
-- it (the larger of the test-retest and visit-to-visit limits of the
-- classifier the head reads; NULL before limits exist) and the change in
-- units of that limit.
CREATE VIEW pair_severity_deltas AS
SELECT fixed_scan_id, moving_scan_id, kind, model_id, zone, delta, limit_value, limit_source,
       abs(delta) / limit_value AS in_limits
  FROM (SELECT r.fixed_scan_id, r.moving_scan_id, r.kind, a.model_id, a.zone,
               b.score - a.score AS delta,
               max(l.limit_value, coalesce(l.visit_limit, 0)) AS limit_value,
               CASE WHEN l.limit_value IS NULL THEN NULL
                    WHEN coalesce(l.visit_limit, 0) > l.limit_value THEN 'visits'
                    ELSE 'retest' END AS limit_source
          FROM registrations r
          JOIN film_severity_scores a ON a.scan_id = r.fixed_scan_id
          JOIN film_severity_scores b ON b.scan_id = r.moving_scan_id
                                     AND b.model_id = a.model_id AND b.zone = a.zone
          JOIN models h ON h.model_id = a.model_id
          LEFT JOIN models c ON c.sha256 = json_extract(h.metadata, '$.classifier_sha256')
          LEFT JOIN retest_limits l ON l.model_id = c.model_id
                                   AND l.signal = 'severity:' || a.zone);
