-- An admin change (work registered or unregistered, settings): bumps the settings version, which a
-- running owner compares with the one it merged. Locks the row first, so the change waits for a
-- run's write in progress. $1 name. No row: no such process.
UPDATE {{schema}}.processes
SET settings_version = settings_version + 1, updated_at = now()
WHERE name = $1
RETURNING settings_version
