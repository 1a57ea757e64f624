-- Postgres holds execution keys, as it holds queue keys: at most one running job per key is a
-- unique index, checked in the claim's own transaction. Global no longer admits keyed jobs one
-- snapshot save at a time, and no leader change, split brain or lost message can let two jobs of
-- a key run at once. Jobs behind a held key stay queued in claim order (the claim skips their key),
-- so nothing is parked as waiting any more: "waiting" is the state they show (shown_state).
UPDATE {{schema}}.jobs SET state = 'queued', locked_by = NULL, locked_until = NULL WHERE state = 'waiting';

CREATE UNIQUE INDEX jobs_running_key_idx ON {{schema}}.jobs (partition, execution_key)
  WHERE execution_key IS NOT NULL AND state = 'running';
DROP INDEX {{schema}}.jobs_active_key_idx;

CREATE OR REPLACE FUNCTION {{schema}}.shown_state(state text, run_at timestamptz, part text, execution_key text, job_id uuid)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN state = 'queued' AND run_at > now() THEN 'scheduled'
    WHEN state = 'queued' AND execution_key IS NOT NULL AND EXISTS (
      SELECT 1 FROM {{schema}}.jobs r
      WHERE r.partition = part AND r.execution_key = shown_state.execution_key
        AND r.state = 'running' AND r.id <> job_id) THEN 'waiting'
    ELSE state
  END
$$;
