-- Who holds a partition's lease, judged by the database clock. $1 partition.
SELECT holder, epoch, expires_at, acquired_at, expires_at > now() AS live, released_at IS NOT NULL AS released
FROM {{schema}}.partition_leases
WHERE partition = $1
