-- A firing that failed (e.g. its partition or queue is not declared by any node): why, for
-- `partita schedule NAME`, outside the rolled-back transaction.
UPDATE {{schema}}.schedules
SET last_error = $2
WHERE id = $1
