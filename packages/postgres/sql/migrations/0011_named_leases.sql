-- Leadership is not only per partition any more: any cluster-wide singleton (a partition's Global,
-- history maintenance, later schedules and background processes) holds a lease by name. The table
-- keeps its rows, so every epoch carries on growing: Global's leases are renamed to
-- 'global:<partition>' (the name Leases gives them), and a Global snapshot saved at epoch N is still
-- fenced by the same lease.
ALTER TABLE {{schema}}.partition_leases RENAME TO leases;
ALTER TABLE {{schema}}.leases RENAME COLUMN partition TO name;
ALTER INDEX {{schema}}.partition_leases_pkey RENAME TO leases_pkey;
UPDATE {{schema}}.leases SET name = 'global:' || name;

-- The fence of a write made on behalf of a lease holder, for use inside the writer's own statement
-- or transaction (`WHERE {{schema}}.lease_held('schedule:nightly', $epoch)`): true while the lease
-- is live at that epoch. The row is locked FOR SHARE, so a take-over (which updates it) waits until
-- the writer's transaction ends: the write either commits before the next holder starts or is
-- refused. The clock is read at the check, not at the transaction's start, so a long transaction
-- cannot use a lease that ran out while it worked. VOLATILE because it locks.
CREATE FUNCTION {{schema}}.lease_held(lease_name text, lease_epoch bigint) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
  SELECT EXISTS (
    SELECT 1 FROM {{schema}}.leases
    WHERE name = lease_name AND epoch = lease_epoch AND released_at IS NULL AND expires_at > clock_timestamp()
    FOR SHARE
  )
$$;
