-- Artifact paths are relative to the store's artifacts folder
-- (STORE.artifacts/), not to the store's folder: a store renamed or copied
-- with its folder keeps its maps. 'x.sqlite.artifacts/pairs/a.png' becomes
-- 'pairs/a.png'.
UPDATE pair_changes
   SET overlay_path = substr(overlay_path, instr(overlay_path, '.artifacts/') + 11)
 WHERE instr(overlay_path, '.artifacts/') > 0;
UPDATE pair_changes
   SET map_path = substr(map_path, instr(map_path, '.artifacts/') + 11)
 WHERE instr(map_path, '.artifacts/') > 0;
