-- SPDX-License-Identifier: MIT
-- 0023: heart size (docs/lungs.md, "Heart size"). Each film's
-- cardiothoracic ratio read from its lung fields (src/nn/lungs-heart.c):
-- NULL where the fields are implausible or do not border the heart.
-- Rows made before it were not measured (heart_measured 0): analyze finds
-- their lung fields again (the same masks: the segmenter is deterministic)
-- and measures them, so an older store gains the signal on its next run.
ALTER TABLE lung_fields ADD COLUMN cardiothoracic_ratio REAL;
ALTER TABLE lung_fields ADD COLUMN heart_measured INTEGER NOT NULL DEFAULT 0;
