#!/bin/sh
# SPDX-License-Identifier: MIT
# The results of a store in a form that does not depend on its ids or
# runs: every table a film or pair owns, keyed by image_index (models by
# sha256), sorted. Two stores of one cohort, one built in one go and one
# merged from shards, print the same lines (tests/cli/shards.sh,
# tests/slurm/run.sh).
#   tools/store_rows.sh CXRTRACK DB
set -eu
X=$1 DB=$2
q() { "$X" sql --db "$DB" --format csv "$1" | tr -d '\r'; }
S="(SELECT image_index FROM scans x WHERE x.scan_id = t."
M="(SELECT sha256 FROM models y WHERE y.model_id = t."
echo "# scans"
q "SELECT image_index, patient_id, visit, follow_up, study_date, day_offset, view_kind, path,
          sha256, width, height, pixel_spacing_mm, status, error, orientation FROM scans ORDER BY image_index"
echo "# patients"
q "SELECT * FROM patients ORDER BY patient_id"
echo "# registrations"
q "SELECT ${S}fixed_scan_id) AS f, ${S}moving_scan_id) AS m, kind, dx_px, dy_px, angle_deg,
          scale, confidence, status, cross_view, ncc_before, ncc_after, psr, asymmetry_px,
          transitivity_px, reason, fixed_aspect, moving_aspect, ncc_global, lung_dice_after,
          deformable, rms_displacement_px, folds, hex(deform_field)
     FROM registrations t ORDER BY f, m, kind"
echo "# pair_changes"
q "SELECT ${S}fixed_scan_id) AS f, ${S}moving_scan_id) AS m, kind, change_score, change_energy,
          changed_area_px, peak_x_px, peak_y_px, threshold, noise_sigma, mask_area_px,
          embedding_distance, feature_change, ${M}model_id), overlay_path, map_path, trend_score,
          mask_kind
     FROM pair_changes t ORDER BY f, m, kind"
echo "# pair_finding_changes"
q "SELECT ${S}fixed_scan_id) AS f, ${S}moving_scan_id) AS m, kind, ${M}model_id), finding,
          probability_delta, heatmap_delta_max FROM pair_finding_changes t ORDER BY f, m, kind, 4, 5"
echo "# pair_change_regions"
q "SELECT ${S}fixed_scan_id) AS f, ${S}moving_scan_id) AS m, kind, region, area_px,
          change_score, mean_d FROM pair_change_regions t ORDER BY f, m, kind, region"
echo "# pair_signals"
q "SELECT ${S}fixed_scan_id) AS f, ${S}moving_scan_id) AS m, kind, ${M}model_id),
          embedding_distance, max_abs_probability_delta, max_probability_rise, rise_finding,
          lung_area_change_right, lung_area_change_left FROM pair_signals t ORDER BY f, m, kind, 4"
echo "# predictions"
q "SELECT ${S}scan_id) AS s, ${M}model_id) AS m, finding, probability FROM predictions t
    ORDER BY s, m, finding"
echo "# embeddings"
q "SELECT ${S}scan_id) AS s, ${M}model_id) AS m, hex(vector) FROM embeddings t ORDER BY s, m"
echo "# lung_fields"
q "SELECT ${S}scan_id) AS s, ${M}model_id) AS m, right_area_px, left_area_px, quality, status,
          reason, mask_path, airless_side FROM lung_fields t ORDER BY s, m"
echo "# film_severity"
q "SELECT ${S}scan_id) AS s, ${M}model_id) AS m, global, status, reason, zone_method
     FROM film_severity t ORDER BY s, m"
echo "# zone_scores"
q "SELECT ${S}scan_id) AS s, ${M}model_id) AS m, zone, score, row0, row1, area_px
     FROM zone_scores t ORDER BY s, m, zone"
echo "# retest_limits"
q "SELECT ${M}model_id) AS m, signal, limit_value, n_copies, visit_limit, visit_pairs
     FROM retest_limits t ORDER BY m, signal"
echo "# progression_flags"
q "SELECT patient_id, signal, view_kind, kind, n_visits, first_visit, last_visit, time_axis, tau,
          p_value, slope, slope_low, slope_high, retest_limit, acute_limit, event_visit, evidence,
          ${M}model_id), limit_source, step_from_visit, step_to_visit, left_out
     FROM progression_flags t ORDER BY patient_id, signal, view_kind"
