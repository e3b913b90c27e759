-- SPDX-License-Identifier: MIT
-- 0022: one status rule and a calibrated confidence (README, Registration).
-- `confidence` becomes the chance that the pair is aligned, calibrated on
-- real pairs graded by eye: 1 / (1 + exp(-(-3.5265 + 5.2191 * ncc_after)))
-- (src/register.c, aligned_probability; bench/register_confidence.py);
-- the global stage's own number, which `confidence` held before, moves to
-- `global_confidence`. The rule: 'ok' needs the confidence >= 0.5 besides
-- the lungs' overlap, so stored 'ok' rows under it become 'low_confidence'
-- with the reason, as a new run would store them. The field's local area
-- change (jacobian_min, jacobian_max: det of the warp's Jacobian inside
-- FIXED's lungs) is stored from now on; NULL for rows made before.
ALTER TABLE registrations ADD COLUMN global_confidence REAL;
ALTER TABLE registrations ADD COLUMN jacobian_min REAL;
ALTER TABLE registrations ADD COLUMN jacobian_max REAL;
UPDATE registrations
   SET global_confidence = confidence,
       confidence = CASE WHEN ncc_after IS NULL THEN NULL
                         ELSE 1.0 / (1.0 + exp (-(-3.5265 + 5.2191 * ncc_after))) END;
UPDATE registrations
   SET status = 'low_confidence',
       reason = 'confidence below ok_confidence: the films correlate too little after '
                || 'registration to be more likely aligned than not'
 WHERE status = 'ok' AND confidence < 0.5;
