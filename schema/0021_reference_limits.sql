-- SPDX-License-Identifier: MIT
-- 0021: reference limits (models/reference-limits.csv, tools/reference_limits.py).
-- A store with fewer films than a limit needs takes cxrtrack's reference
-- test-retest limits (their method begins 'reference:'), and one with too
-- few consecutive pairs the reference visit-to-visit limit: visit_source
-- says which ('store' or 'reference'; NULL: none). pair_severity_deltas
-- names the reference as the flags do (reference, reference_visits).
ALTER TABLE retest_limits ADD COLUMN visit_source TEXT;

DROP VIEW pair_severity_deltas;
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
                    WHEN coalesce(l.visit_limit, 0) > l.limit_value
                         THEN CASE WHEN l.visit_source = 'reference' THEN 'reference_visits'
                                   ELSE 'visits' END
                    WHEN l.method LIKE 'reference%' THEN 'reference'
                    ELSE 'retest' END AS limit_source
          FROM registrations r
          JOIN film_severity_scores a ON a.scan_id = r.fixed_scan_id
          JOIN film_severity_scores b ON b.scan_id = r.moving_scan_id
                                     AND b.model_id = a.model_id AND b.zone = a.zone
          JOIN models h ON h.model_id = a.model_id
          LEFT JOIN models c ON c.sha256 = json_extract(h.metadata, '$.classifier_sha256')
          LEFT JOIN retest_limits l ON l.model_id = c.model_id
                                   AND l.signal = 'severity:' || a.zone);
