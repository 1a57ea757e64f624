-- Takes ownership of a process for a run, in one statement: when nobody holds a live lease on it,
-- it is not paused, and a run is due: an earlier run was abandoned unfinished (resumed, with its saved
-- progress), it never ran, its last run started before the current slot (slots are multiples of
-- schedule_ms since the epoch, by the database clock), or a trigger came after the last start.
-- The epoch goes up on every claim, so a previous owner's fenced writes match no row any more.
-- $1 name, $2 owner, $3 lease ms. No row: not claimed.
UPDATE {{schema}}.processes p
SET owner = $2,
    owner_epoch = p.owner_epoch + 1,
    lease_expires_at = now() + make_interval(secs => $3::double precision / 1000),
    run_no = CASE WHEN p.run_started_at IS NOT NULL AND p.run_finished_at IS NULL THEN p.run_no ELSE p.run_no + 1 END,
    run_started_at = CASE WHEN p.run_started_at IS NOT NULL AND p.run_finished_at IS NULL THEN p.run_started_at ELSE now() END,
    run = CASE WHEN p.run_started_at IS NOT NULL AND p.run_finished_at IS NULL THEN p.run ELSE NULL END,
    run_settings_version = CASE WHEN p.run_started_at IS NOT NULL AND p.run_finished_at IS NULL THEN p.run_settings_version ELSE p.settings_version END,
    run_finished_at = NULL,
    run_state = 'active',
    progress_at = now(),
    updated_at = now()
WHERE p.name = $1
  AND NOT p.paused
  AND (p.lease_expires_at IS NULL OR p.lease_expires_at <= now())
  AND (
    p.run_started_at IS NULL
    OR p.run_finished_at IS NULL
    OR p.run_started_at < to_timestamp(floor(extract(epoch FROM now()) * 1000 / p.schedule_ms) * p.schedule_ms / 1000.0)
    OR p.triggered_at > p.run_started_at
  )
RETURNING p.name, p.owner_epoch, p.run_no, p.run_started_at, p.run_started_at < now() AS resumed, p.run,
  p.settings, p.settings_version, p.run_settings_version, p.schedule_ms
