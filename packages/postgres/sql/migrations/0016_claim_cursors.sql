-- Where a queue's claims have got to, shared by every node claiming it. Without it every claim
-- started at the queue's head of jobs_claim_idx and walked the entries of rows the other nodes'
-- claims held locked or had just claimed (dead versions not yet dead to every snapshot): with three
-- nodes on one queue ~2 more entries read and heap visits per job, ~+10 ms Postgres CPU per 1,000
-- jobs (bench/README.md, eighteenth session, wip-cluster). A claim now starts past the sort key
-- (priority, run_at, id) where the claims before it ended, and scans from the head only when that is
-- due (head_at older than claim_batch's bound) or the part past the cursor came up short, so a job
-- that lands behind the cursor (a retry, a rescue, a release, a promoted key head, a higher
-- priority, an enqueue that committed late) waits at most that bound behind later jobs.
-- A hint, never a rule: any value is safe, since the head scans find whatever sorts before it.
CREATE TABLE {{schema}}.claim_cursors (
  partition text NOT NULL,
  queue     text NOT NULL,
  -- The greatest sort key any claim of the queue has locked.
  priority  integer NOT NULL,
  run_at    timestamptz NOT NULL,
  id        uuid NOT NULL,
  -- The start of the last claim whose scan from the head saw every claimable job before the cursor.
  head_at   timestamptz NOT NULL,
  PRIMARY KEY (partition, queue)
) WITH (fillfactor = 20); -- each claim rewrites its queue's row; room on the page keeps that HOT
