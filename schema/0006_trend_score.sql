-- SPDX-License-Identifier: MIT
-- 0006: the change score at the lower threshold the trend tests use
-- (README, "Difference maps" and "Progression"). A single pair needs a high
-- threshold so that one pair's noise is not called change; a trend test over
-- a whole series filters noise by consistency instead, so it can look at
-- fainter change. Rows made before this migration have NULL here; the next
-- `cxrtrack analyze` makes their maps again.

ALTER TABLE pair_changes ADD COLUMN trend_score REAL;      -- sum of (|d| - trend_threshold) over the mask, px^2 of FIXED
ALTER TABLE pair_changes ADD COLUMN trend_threshold REAL;  -- max(0.015, 2 x noise_sigma)
