-- One statement renews the leases of every job a node is running ($4: the ids its engines track;
-- a job it lost track of is not renewed and gets rescued), and tells it which of them were asked
-- to cancel (the durable path; the bus only makes it faster).
--
-- Rows locked by another transaction are skipped, not waited for: the node's own outcome writer
-- holds the rows of the batch it is completing (a continuation's transaction can be long), and a
-- renewal that waited on them deadlocked with it (each held rows the other wanted, in different
-- orders) or stalled every renewal behind it. A skipped row is still reported as held when this
-- statement's snapshot shows it running under this node (its lease was renewed a round ago; the
-- next round renews it), so a lock of a moment never reads as a lost lease.
--
-- One read of the node's rows in the usual round, where none is locked: `free` finds and locks
-- them; only the ids it did not return (skipped, or no longer this node's) are read again, by
-- snapshot, for the skipped ones still to count as held. The ids come through a scalar subquery so
-- that no plan knows how many there are: a primary-key probe per id (complete_batch says why).
WITH node AS (
  INSERT INTO {{schema}}.nodes (id, heartbeat_at, info) VALUES ($1, now(), coalesce($3::jsonb, '{}'))
  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), info = coalesce($3::jsonb, {{schema}}.nodes.info)
),
free AS (
  SELECT id FROM {{schema}}.jobs
  WHERE id = ANY((SELECT $4::uuid[])::uuid[]) AND state = 'running' AND locked_by = $1
  FOR UPDATE SKIP LOCKED
),
renewed AS (
  UPDATE {{schema}}.jobs j
  SET locked_until = now() + make_interval(secs => $2::double precision / 1000)
  FROM free
  WHERE j.id = free.id
  RETURNING j.id, j.cancel_requested
),
held AS (
  SELECT id, cancel_requested FROM {{schema}}.jobs
  WHERE id = ANY(ARRAY(SELECT unnest($4::uuid[]) EXCEPT ALL SELECT id FROM free)) AND state = 'running' AND locked_by = $1
)
SELECT id, cancel_requested FROM renewed
UNION ALL
SELECT id, cancel_requested FROM held
