-- Opens a run's write: locks the process row (claims and admin changes wait for the write to end)
-- and reads who owns it and what changed. $1 name.
SELECT owner, owner_epoch, settings, settings_version, schedule_ms, paused, now() AS db_now
FROM {{schema}}.processes
WHERE name = $1
FOR UPDATE
