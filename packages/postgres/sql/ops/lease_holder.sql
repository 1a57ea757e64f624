-- Who holds a lease, judged by the database clock. $1 lease name.
SELECT holder, epoch, expires_at, acquired_at, expires_at > now() AS live, released_at IS NOT NULL AS released
FROM {{schema}}.leases
WHERE name = $1
