-- Takes a lease in one atomic statement: inserts it when the name never had one,
-- takes it over when it has expired (or was released) — incrementing the epoch — and re-acquires
-- it, keeping the epoch, when it is still ours and live. Racers for one row serialise on its row
-- lock and each re-checks the WHERE against the winner's row, so exactly one of them gets it.
-- $1 lease name, $2 node id, $3 ttl in ms. No row back: another node holds a live lease.
INSERT INTO {{schema}}.leases AS l (name, holder, epoch, expires_at, acquired_at, renewed_at, released_at)
VALUES ($1, $2, 1, now() + make_interval(secs => $3::double precision / 1000), now(), now(), NULL)
ON CONFLICT (name) DO UPDATE SET
  epoch = CASE WHEN l.holder = excluded.holder AND l.expires_at > now() THEN l.epoch ELSE l.epoch + 1 END,
  acquired_at = CASE WHEN l.holder = excluded.holder AND l.expires_at > now() THEN l.acquired_at ELSE now() END,
  holder = excluded.holder,
  expires_at = excluded.expires_at,
  renewed_at = now(),
  released_at = NULL
WHERE l.expires_at <= now() OR l.holder = excluded.holder
RETURNING epoch, expires_at, acquired_at
