-- Jobs behind a held execution key leave the claim index. Per (partition, execution key) one job is
-- the key's head, queued or running; the key's other live jobs are 'waiting', which the partial
-- claim index excludes, so a claim never walks past them (a million jobs behind a running holder
-- used to cost every claim a million rejected rows). The head row is the lock that orders an
-- enqueue (which parks its jobs as waiting when the key has a head) with the settle that promotes
-- the next waiting job once the head has left (settle_execution_keys): both lock this row, and the
-- settle only writes when `seq` is what its snapshot read. Rows of keys with no live job are deleted.
CREATE TABLE {{schema}}.execution_key_heads (
  partition     text NOT NULL,
  execution_key text NOT NULL,
  head          uuid,
  -- Bumped by every enqueue of the key and every settle: a settle whose snapshot read an older seq
  -- may have missed a job and settles the key again instead of writing.
  seq           bigint NOT NULL DEFAULT 1,
  PRIMARY KEY (partition, execution_key)
) WITH (fillfactor = 70); -- head and seq are not indexed: room on the page keeps their updates HOT

-- The next job of a key: the settle's probe, in claim order among the key's waiting jobs.
CREATE INDEX jobs_waiting_key_idx ON {{schema}}.jobs (partition, execution_key, priority, run_at, id)
  WHERE state = 'waiting';

-- Existing keyed jobs: the running holder is the head, else the first queued job in claim order;
-- every other live job of the key waits.
INSERT INTO {{schema}}.execution_key_heads (partition, execution_key, head)
SELECT DISTINCT ON (partition, execution_key) partition, execution_key, id
FROM {{schema}}.jobs
WHERE execution_key IS NOT NULL
ORDER BY partition, execution_key, (state = 'running') DESC, priority, run_at, id;

UPDATE {{schema}}.jobs j SET state = 'waiting'
FROM {{schema}}.execution_key_heads h
WHERE j.partition = h.partition AND j.execution_key = h.execution_key AND j.id <> h.head;

-- A waiting job is now stored as such; a queued one is never behind a running holder.
CREATE OR REPLACE FUNCTION {{schema}}.shown_state(state text, run_at timestamptz, part text, execution_key text, job_id uuid)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN state = 'queued' AND run_at > now() THEN 'scheduled' ELSE state END
$$;
