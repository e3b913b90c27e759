-- SPDX-License-Identifier: MIT
-- 0018: each pair's largest change of a finding's probability, in units
-- of that finding's limit: the larger of its test-retest limit (re-posed
-- copies) and its visit-to-visit limit, the limit its flags use
-- (retest_limits; README, Progression). The raw largest |delta|
-- (pair_signals.max_abs_probability_delta) is ruled by the findings whose
-- probabilities swing most from film to film (Pneumonia, Infiltration);
-- against its own limit a small Cardiomegaly or Effusion change counts
-- as what it is. A view, so that it follows the limits a later
-- calibration or merge derives: a pair of pair_signals has a row once the
-- store has limits (analyze's calibration; none in a shard analysed with
-- --no-flags until merged), over the findings that have one. finding,
-- delta (moving - fixed), limit_value and limit_source are those of the
-- finding that moved most in its limits (SQLite's bare columns beside
-- max(); on a tie one of the tied).
CREATE VIEW pair_probability_change AS
SELECT fixed_scan_id, moving_scan_id, kind, model_id,
       max(abs(delta) / limit_value) AS change_in_limits, finding, delta, limit_value,
       limit_source
  FROM (SELECT p.fixed_scan_id, p.moving_scan_id, p.kind, p.model_id, pf.finding,
               pm.probability - pf.probability AS delta,
               max(l.limit_value, coalesce(l.visit_limit, 0)) AS limit_value,
               CASE WHEN coalesce(l.visit_limit, 0) > l.limit_value THEN 'visits'
                    ELSE 'retest' END AS limit_source
          FROM pair_signals p
          JOIN predictions pf ON pf.scan_id = p.fixed_scan_id AND pf.model_id = p.model_id
          JOIN predictions pm ON pm.scan_id = p.moving_scan_id AND pm.model_id = p.model_id
                             AND pm.finding = pf.finding
          JOIN retest_limits l ON l.model_id = p.model_id
                              AND l.signal = 'probability:' || pf.finding)
 WHERE limit_value > 0
 GROUP BY fixed_scan_id, moving_scan_id, kind, model_id;
