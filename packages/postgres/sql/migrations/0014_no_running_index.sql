-- A claim changes `state`, so it is never a HOT update, and it inserted an entry into every index
-- whose predicate the running row meets: jobs_pkey and this one. Its only reader was the rescue
-- scan for expired leases; rescue now starts from the small nodes table (rescue_dead_nodes: the
-- running jobs of nodes that stopped heartbeating) and a slower sweep of jobs by one node
-- (rescue_expired) catches the rest, so no claim pays for an index over running jobs.
DROP INDEX {{schema}}.jobs_running_idx;

-- Running jobs whose lease ran out, already row-locked by the caller, go back to queued (or waiting
-- behind their key, migration 0013; the caller settles the keys returned) and run again. The lost
-- attempt is recorded as an error; a job rescued max_rescues times (it keeps killing its node) fails
-- for good, into history (history_row, migration 0004). The one requeue of both rescue paths: the
-- sweep (rescue_expired) and every node's round over the nodes that stopped heartbeating
-- (rescue_dead_nodes).
CREATE FUNCTION {{schema}}.rescue_locked_jobs(ids uuid[], max_rescues integer)
RETURNS TABLE (id uuid, partition text, queue text, execution_key text, failed boolean)
LANGUAGE sql VOLATILE AS $$
  WITH requeued AS (
    UPDATE {{schema}}.jobs j
    SET state = CASE WHEN j.execution_key IS NULL THEN 'queued' ELSE 'waiting' END, run_at = least(j.run_at, now()),
        locked_by = NULL, locked_until = NULL, rescues = j.rescues + 1,
        errors = j.errors || jsonb_build_array(jsonb_build_object(
          'attempt', j.attempts, 'at', now(), 'name', 'LeaseExpired', 'rescued', true,
          'message', format('node %s stopped renewing the lease; the job was rescued', j.locked_by)))
    WHERE j.id = ANY(ids) AND j.rescues + 1 < max_rescues
    RETURNING j.id, j.partition, j.queue, j.execution_key, false
  ), given_up AS (
    DELETE FROM {{schema}}.jobs j
    WHERE j.id = ANY(ids) AND j.rescues + 1 >= max_rescues
    RETURNING j AS job
  ), moved AS (
    INSERT INTO {{schema}}.jobs_history
    SELECT h.*
    FROM given_up g, LATERAL {{schema}}.history_row(g.job, 'failed', NULL,
      (g.job).errors || jsonb_build_array(jsonb_build_object(
        'attempt', (g.job).attempts, 'at', now(), 'name', 'LeaseExpired', 'rescued', true,
        'message', format('node %s stopped renewing the lease %s times; the job was failed', (g.job).locked_by, (g.job).rescues + 1)))) h
    RETURNING jobs_history.id, jobs_history.partition, jobs_history.queue, jobs_history.execution_key, true
  )
  SELECT * FROM requeued UNION ALL SELECT * FROM moved
$$;
