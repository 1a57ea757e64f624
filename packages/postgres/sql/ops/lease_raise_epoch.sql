-- The holder of a live lease moves its epoch up to at least $4 (e.g. above the epoch recorded in
-- a persisted snapshot that outlived the lease table). $1 lease name, $2 node id, $3 current epoch.
UPDATE {{schema}}.leases
SET epoch = greatest(epoch, $4::bigint)
WHERE name = $1 AND holder = $2 AND epoch = $3 AND released_at IS NULL AND expires_at > now()
RETURNING epoch
