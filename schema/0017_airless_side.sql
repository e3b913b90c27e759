-- SPDX-License-Identifier: MIT
-- 0017: lung fields with one side without aerated lung. A film whose
-- segmenter finds one lung, plausible on its own, and nothing on the other
-- side is 'implausible' as a pair of lungs (its mask is not used to
-- register or compare), but its areas are a measure: an opaque lung, a
-- large effusion or a collapse leaves that side with no aerated lung.
-- airless_side names that side ('right', 'left': the patient's); the lung
-- area signals (pair_signals.lung_area_change_*, the lung_area_loss
-- series) read such films as they read plausible ones. NULL otherwise.
ALTER TABLE lung_fields ADD COLUMN airless_side TEXT CHECK (airless_side IN ('right', 'left'));
