-- SPDX-License-Identifier: MIT
-- 0019: every finding's probability change of each pair, in units of the
-- finding's limit (the larger of its test-retest and visit-to-visit
-- limits, the limit its flags use): pair_probability_deltas. A pair's
-- largest change alone (pair_probability_change) can name the wrong
-- thing to look at: across a change of view the findings with the
-- smallest limits shift most in their limits (on series1024, 211's PA to
-- AP pair: Fibrosis -0.040 on a limit of 0.010, while Edema rose by 0.25,
-- three times its limit, and Effusion by 0.19), so a report lists every
-- finding beyond its limit. pair_probability_change is now the largest
-- row of this view, the same rows as 0018 gave.
CREATE VIEW pair_probability_deltas AS
SELECT fixed_scan_id, moving_scan_id, kind, model_id, finding, delta, limit_value, limit_source,
       abs(delta) / limit_value AS in_limits
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
 WHERE limit_value > 0;

DROP VIEW pair_probability_change;
CREATE VIEW pair_probability_change AS
SELECT fixed_scan_id, moving_scan_id, kind, model_id, max(in_limits) AS change_in_limits,
       finding, delta, limit_value, limit_source
  FROM pair_probability_deltas
 GROUP BY fixed_scan_id, moving_scan_id, kind, model_id;
