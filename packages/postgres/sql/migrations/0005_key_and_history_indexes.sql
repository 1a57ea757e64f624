-- Keys held or waited for: the claim's probe (skip keys a running job holds), the shown state
-- of a queued job behind its key, and a new Global leader's rebuild all read only running and
-- waiting keyed rows. The index over every keyed live row, queued ones included, cost an entry
-- at each enqueue and each claim and answered none of these better.
CREATE INDEX jobs_active_key_idx ON {{schema}}.jobs (partition, execution_key)
  WHERE execution_key IS NOT NULL AND state IN ('running', 'waiting');
DROP INDEX {{schema}}.jobs_execution_key_idx;

-- The primary key (id, finished_at) already serves lookups by id; the extra index only cost an
-- insert per finished job.
DROP INDEX {{schema}}.jobs_history_id_idx;

-- Most jobs have no lookup values; GIN would still index each NULL as a placeholder entry.
DROP INDEX {{schema}}.jobs_history_lookup_idx;
CREATE INDEX jobs_history_lookup_idx ON {{schema}}.jobs_history USING gin (lookup_index jsonb_path_ops)
  WHERE lookup_index IS NOT NULL;

-- The state a live job shows to users. A queued job whose execution key another job holds (running,
-- or parked waiting) shows as waiting: the claim leaves such jobs queued, in order, rather than
-- parking each one, so "waiting" is derived here. Due in the future: scheduled.
CREATE FUNCTION {{schema}}.shown_state(state text, run_at timestamptz, part text, execution_key text, job_id uuid)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN state = 'queued' AND run_at > now() THEN 'scheduled'
    WHEN state = 'queued' AND execution_key IS NOT NULL AND EXISTS (
      SELECT 1 FROM {{schema}}.jobs r
      WHERE r.partition = part AND r.execution_key = shown_state.execution_key
        AND r.state IN ('running', 'waiting') AND r.id <> job_id) THEN 'waiting'
    ELSE state
  END
$$;
