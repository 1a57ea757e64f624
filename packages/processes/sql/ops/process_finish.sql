-- A run's end: its final status and state, the run's stats added into the aggregate, and the lease
-- given up so the next slot's claim does not wait for it. Fenced by owner and epoch.
-- $1 name, $2 owner, $3 epoch, $4 run status, $5 merged settings version, $6 state, $7 aggregate.
UPDATE {{schema}}.processes
SET run = $4,
    run_settings_version = $5,
    run_state = $6,
    aggregate = $7,
    progress_at = now(),
    run_finished_at = now(),
    lease_expires_at = now(),
    updated_at = now()
WHERE name = $1 AND owner = $2 AND owner_epoch = $3
RETURNING run_finished_at
