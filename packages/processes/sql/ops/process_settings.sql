-- Replaces a process's settings and, when $3 is not null, its schedule; bumps the settings version.
-- $1 name, $2 settings (null: unchanged), $3 schedule ms (null: unchanged).
UPDATE {{schema}}.processes
SET settings = coalesce($2, settings),
    schedule_ms = coalesce($3, schedule_ms),
    settings_version = settings_version + 1,
    updated_at = now()
WHERE name = $1
RETURNING settings_version
