-- A node stopping mid-run saves the run and gives its lease up without finishing it, so another
-- node resumes the run at once from what was saved. Fenced by owner and epoch.
-- $1 name, $2 owner, $3 epoch, $4 run status, $5 merged settings version.
UPDATE {{schema}}.processes
SET run = $4,
    run_settings_version = $5,
    progress_at = now(),
    lease_expires_at = now(),
    updated_at = now()
WHERE name = $1 AND owner = $2 AND owner_epoch = $3
RETURNING progress_at
