-- A run's progress: its status, the settings version it merged, and a renewed lease. Fenced by owner
-- and epoch (the caller holds the row lock from process_lock).
-- $1 name, $2 owner, $3 epoch, $4 run status, $5 merged settings version, $6 lease ms.
UPDATE {{schema}}.processes
SET run = $4,
    run_settings_version = $5,
    progress_at = now(),
    lease_expires_at = now() + make_interval(secs => $6::double precision / 1000),
    updated_at = now()
WHERE name = $1 AND owner = $2 AND owner_epoch = $3
RETURNING progress_at
