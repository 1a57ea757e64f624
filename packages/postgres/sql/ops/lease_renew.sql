-- Extends a lease for its holder at the epoch it was acquired with. A lease that expired but that
-- nobody took yet can still be renewed: any take-over would have incremented the epoch, so the
-- match on (holder, epoch) proves nobody led in between. A released lease cannot be renewed.
-- $1 lease name, $2 node id, $3 epoch, $4 ttl in ms.
UPDATE {{schema}}.leases
SET expires_at = now() + make_interval(secs => $4::double precision / 1000), renewed_at = now()
WHERE name = $1 AND holder = $2 AND epoch = $3 AND released_at IS NULL
RETURNING expires_at
