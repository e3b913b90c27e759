-- SPDX-License-Identifier: MIT
-- 0007: films whose pixels are not square in the patient. The NIH set
-- stores every film at 1024 x 1024 whatever its original shape (2500 x 2048,
-- 2048 x 2500, 2992 x 2991 ...), so a pixel of a 2500 x 2048 original is
-- 0.82 times as tall as it is wide. Registration works in the patient's
-- frame when it knows this (README, "Registration").

-- A stored film's pixel height over width in the patient, from the original
-- size and spacing the metadata gives (1 when they are not known, or absurd).
CREATE VIEW scan_pixel_aspect AS
SELECT scan_id, CASE WHEN a BETWEEN 0.25 AND 4 THEN a ELSE 1.0 END AS pixel_aspect
  FROM (SELECT scan_id,
               CASE WHEN orig_width > 0 AND orig_height > 0 AND width > 0 AND height > 0
                    THEN (orig_height * coalesce (orig_spacing_y_mm, orig_spacing_x_mm, 1.0) / height)
                         / (orig_width * coalesce (orig_spacing_x_mm, orig_spacing_y_mm, 1.0) / width)
                    ELSE 1.0 END AS a
          FROM scans);

-- The aspects a registration was made with (NULL: square, as in rows made
-- before this migration).
ALTER TABLE registrations ADD COLUMN fixed_aspect REAL;
ALTER TABLE registrations ADD COLUMN moving_aspect REAL;
