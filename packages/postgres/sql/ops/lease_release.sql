-- Graceful hand-over: expires the lease now so another node takes it on its next attempt. The row
-- (and its epoch) stays, so the next holder's epoch is higher. $1 lease name, $2 node id, $3 epoch.
UPDATE {{schema}}.leases
SET expires_at = least(expires_at, now()), released_at = now()
WHERE name = $1 AND holder = $2 AND epoch = $3 AND released_at IS NULL
RETURNING epoch
