-- Saves a partition's Global snapshot unless a newer epoch has been seen — in the saved state, or
-- in the partition's lease, 'global:<partition>' (a new leader that has not saved yet still fences the old one). The
-- lease row is read FOR SHARE: a concurrent take-over either waits for this save to commit (and
-- its leader then loads this snapshot) or commits first and this save sees its epoch and is refused.
-- $1 partition, $2 epoch, $3 snapshot (json text). No row back: refused as stale.
WITH lease AS (
  SELECT epoch FROM {{schema}}.leases WHERE name = 'global:' || $1 FOR SHARE
)
INSERT INTO {{schema}}.global_state AS g (partition, epoch, snapshot, saved_at)
SELECT $1, $2::bigint, $3::jsonb, now()
WHERE NOT EXISTS (SELECT 1 FROM lease WHERE lease.epoch > $2::bigint)
ON CONFLICT (partition) DO UPDATE SET epoch = excluded.epoch, snapshot = excluded.snapshot, saved_at = excluded.saved_at
WHERE g.epoch <= excluded.epoch
RETURNING epoch
