-- SPDX-License-Identifier: MIT
-- 0016: films stored upside down. analyze sets 'upside_down' on a film
-- that lines up with the patient's earlier film only when turned half a
-- turn (src/pipeline.c, check_upside_down); its pairs fail with the
-- reason rather than being registered as if it were upright. NULL: not
-- found so (left-right mirroring is not looked for).
ALTER TABLE scans ADD COLUMN orientation TEXT CHECK (orientation IN ('upside_down'));
