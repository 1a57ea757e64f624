-- The owner extends its lease (a timer while a long item runs). Fenced: no row back when the run
-- lost ownership (another node claimed it, so the epoch moved on). $1 name, $2 owner, $3 epoch, $4 lease ms.
UPDATE {{schema}}.processes
SET lease_expires_at = now() + make_interval(secs => $4::double precision / 1000)
WHERE name = $1 AND owner = $2 AND owner_epoch = $3 AND run_finished_at IS NULL
RETURNING lease_expires_at
