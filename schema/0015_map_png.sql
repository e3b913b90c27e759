-- SPDX-License-Identifier: MIT
-- 0015: difference maps as 8-bit PNG (STEM.map.png: 0 where nothing was
-- compared, else 128 + round(d / map_scale)), about a tenth of the float16
-- .npy and colour overlay PNG they replace; the overlay is drawn from the
-- map when a report shows it. Rows made before keep their .npy and
-- overlay files (map_scale NULL), and reports still show those.
ALTER TABLE pair_changes ADD COLUMN map_scale REAL;  -- intensity (0..1) per level of map_path
