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
-- $5 (ms, optional): only leases ending within this long are renewed; a fresher lease is reported
-- held by `mine` without a write. At thousands of jobs a second most tracked jobs were claimed since
-- the last round, and renewing each (a non-HOT update of a row that finishes a moment later) cost
-- as many row writes as the claims themselves. The test goes through coalesce so that no plan
-- matches an index with it or proves a partial index's predicate from it (the ids are the way in).
WITH node AS (
  INSERT INTO {{schema}}.nodes (id, heartbeat_at, info) VALUES ($1, now(), coalesce($3::jsonb, '{}'))
  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), info = coalesce($3::jsonb, {{schema}}.nodes.info)
),
mine AS MATERIALIZED (
  -- The node's rows, read once (by primary key: the scalar subquery makes the ids an index
  -- condition whatever the statistics say, the lease test inside coalesce matches no partial index).
  SELECT id, cancel_requested,
         $5::double precision IS NULL OR coalesce(locked_until < now() + make_interval(secs => $5::double precision / 1000), true) AS due
  FROM {{schema}}.jobs
  WHERE id = ANY((SELECT $4::uuid[])::uuid[]) AND coalesce(state = 'running' AND locked_by = $1, false)
),
free AS (
  -- Of those, the leases to renew, locked; checked again on the locked row.
  SELECT j.id FROM {{schema}}.jobs j
  WHERE j.id = ANY(ARRAY(SELECT m.id FROM mine m WHERE m.due)) AND coalesce(j.state = 'running' AND j.locked_by = $1, false)
  FOR UPDATE SKIP LOCKED
),
renewed AS (
  -- The rows `free` locked, by primary key: joined with `free`, the plan was left to the estimates,
  -- and with statistics taken while jobs was empty (one row, however many it holds) it read all of
  -- jobs_pkey as the outer side of a nested loop over `free`, quadratic in the node's jobs.
  UPDATE {{schema}}.jobs j
  SET locked_until = now() + make_interval(secs => $2::double precision / 1000)
  WHERE j.id = ANY(ARRAY(SELECT id FROM free))
  RETURNING j.id, j.cancel_requested
)
SELECT id, cancel_requested FROM renewed
UNION ALL
SELECT id, cancel_requested FROM mine WHERE id NOT IN (SELECT id FROM free)
