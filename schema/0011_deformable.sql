-- The deformable stage of registration and a status from the pair's own
-- evidence (src/register-deform.c). ncc_before and ncc_after keep their
-- names; from this method on they are measured inside FIXED's lung fields
-- (ncc_region 'lungs') when both films have lung fields, else in the
-- thorax window ('thorax'), and ncc_after is after the whole registration.
-- transitivity_px (the chains) is information only from now on.
ALTER TABLE registrations ADD COLUMN ncc_global REAL;          -- after the global stage alone
ALTER TABLE registrations ADD COLUMN ncc_region TEXT;          -- 'lungs' or 'thorax'
ALTER TABLE registrations ADD COLUMN lung_dice_before REAL;    -- lung overlap, films overlaid
ALTER TABLE registrations ADD COLUMN lung_dice_after REAL;     -- ... and warped (NULL: no lungs)
ALTER TABLE registrations ADD COLUMN deformable INTEGER NOT NULL DEFAULT 0;  -- 1: field below
ALTER TABLE registrations ADD COLUMN rms_displacement_px REAL; -- the field in FIXED's lungs, px
ALTER TABLE registrations ADD COLUMN max_displacement_px REAL;
ALTER TABLE registrations ADD COLUMN folds INTEGER;            -- points where the warp folds
-- The field: a cubic B-spline over FIXED's pixels, deform_nx x deform_ny
-- control points (include/cxr/register.h), stored as 2 x ny x nx float32
-- little-endian, ux then uy, in FIXED's pixels (at most 2 KiB).
ALTER TABLE registrations ADD COLUMN deform_nx INTEGER;
ALTER TABLE registrations ADD COLUMN deform_ny INTEGER;
ALTER TABLE registrations ADD COLUMN deform_field BLOB;
