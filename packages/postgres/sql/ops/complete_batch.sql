-- plan: generic
-- Group commit of successes: the rows leave the live table and land in history in one statement.
-- Only the node holding the lease for that very attempt may complete it; anything else comes back
-- in `not_done` and the caller logs it as refused. Only those come back, not the completed ones:
-- nearly every id is completed, and a row per id cost this statement its result building and the
-- node the parsing of a row per job. When every id was deleted (the count says so) the ids are not
-- read again at all.
--
-- The history columns are written out (fragments/completion_history.sql) on purpose, unlike fail_batch, cancel_jobs and
-- rescue_expired, which use history_row (migration 0004): this is the hottest write (tens of
-- thousands of rows a second, hundreds per statement) and every shape of the shared mapping was
-- measurably slower. Inlined, history_row reads each column out of the deleted row as a composite
-- (+~3 us a row, ~8% on a batch of 500); called inside RETURNING it reads plain columns but is
-- inlined once per column, adding 0.4-1.5 ms of planning to every statement (each is planned
-- afresh, as this statement then was). Keep this list in step with history_row; a test in
-- store.test.ts fails when it is not.
--
-- A completed job that held an execution key was its key's head: the key is settled here, in
-- the same statement, as settle_execution_keys does (read that file for the why of each step),
-- so a keyed completion pays no second round trip. The probes read this statement's snapshot, in
-- which the completed jobs are still running; `done` says they have left. A key whose head row an
-- enqueue changed after the snapshot (its seq moved on) is not written here: it comes back as a
-- row with id NULL for the caller to settle (settle_execution_keys, under the head's lock).
--
-- A success whose job is marked with a continuation named in $5 is not written to history: that
-- continuation keeps the job's outcome itself (a workflow step's activity record), in this same
-- transaction. A filter on a column `done` already holds: no probe, no parameter per row.
--
-- Taking into hands ($7-$10): the engine completing a key's head
-- takes the key's next job as its own running attempt in this same statement, so that job is
-- running here as soon as its predecessor's completion commits, with no settle round trip and no
-- claim between them. $7 the lease ms (NULL: take nothing), $8 the types the node defines and $9
-- the continuations it runs (NULL: any), $10 per id of $1 (same order) whether the engine holds a
-- place for the key's next job; the next job must be of the completed job's queue, due, of such a
-- type and continuation, and its queue not paused or stopped in the control row. Any other is
-- queued. The rows of the answer: `not_done` (an id not completed), a key to settle again
-- (`partition`, `execution_key`), a queue a job was queued in (`partition`, `queue`), or a taken
-- job (`id` and the columns of a claimed job, as claim_batch).
--
-- Rows not found at their address ($6, below) are found by a primary-key probe per id in every plan. $1 comes sorted (uuid order),
-- with $2 the attempts in the same order: each row's attempt is found by a binary search of $1
-- (width_bucket, ~10 comparisons), which cost less than a jsonb object keyed by id (parsing it
-- and a text form of each row's id: 6.1 -> 5.5 CPU us per job at batches of 800). Its result ($3:
-- id -> result, only the non-null ones, usually none) is looked up in a jsonb object. Each is
-- parsed once per statement, through scalar subqueries, so that a generic plan (the store runs
-- this one generic) parses them once even where the parameters arrive typed text (a per-row text
-- -> jsonb cast of the whole object took 6 s for 1,300 rows). A join with the batch left the way into jobs to the
-- estimates: with statistics taken while jobs was empty (reltuples 0, so it counts as one row
-- however many it holds, as after the bench's VACUUM ANALYZE between drains) the plan hashed jobs
-- against the batch, reading every live row of the node through jobs_running_idx, or all of
-- jobs_pkey, on each statement (5,000-20,000 rows for a batch of 2,000: half its time). So the ids
-- come through a scalar subquery (no plan knows the batch's size, which made a seq scan look
-- cheaper than a thousand probes), and the state and lease test through coalesce (no plan matches
-- jobs_running_idx with it or proves its predicate from it).
--
-- $6: each job's row address as its claim (or the completion that took it into hands) left it: the
-- rows are fetched there first and by id only where they moved (fragments completion_at_address and
-- completion_by_id, shared with complete_plain; $5 the history's, completion_history). A keyed job's
-- row was written by the update that took it, so its primary key holds two entries for it that a
-- probe by id steps through.
WITH by_address AS {{> completion_at_address}},
by_id AS {{> completion_by_id}},
done AS (
  SELECT * FROM by_address UNION ALL SELECT * FROM by_id
),
recorded AS {{> completion_history}},
seen AS MATERIALIZED (
  -- At most one running job per key, so one row per key; `holder` names it below.
  SELECT d.id AS holder, d.partition, d.execution_key, h.seq, h.ctid AS head_ctid, nxt.id AS next_id, nxt.ctid AS next_ctid,
         nxt.queue,
         coalesce($7::double precision IS NOT NULL AND nxt.queue = d.queue AND nxt.run_at <= now()
                  AND ($8::text[] IS NULL OR nxt.type = ANY($8::text[]))
                  AND (nxt.continuation IS NULL OR $9::text[] IS NULL OR nxt.continuation = ANY($9::text[]))
                  AND (SELECT $10::boolean[])[width_bucket(d.id, (SELECT $1::uuid[])::uuid[])], false) AS take
  FROM done d
  -- A probe per key (lateral): a join let a generic plan made while the table looked empty hash all of it.
  LEFT JOIN LATERAL (
    SELECT h.seq, h.ctid, h.head FROM {{schema}}.execution_key_heads h
    WHERE h.partition = d.partition AND h.execution_key = d.execution_key
    OFFSET 0
  ) h ON true
  LEFT JOIN LATERAL (
    SELECT w.id, w.ctid, w.queue, w.run_at, w.type, w.continuation FROM {{schema}}.jobs w
    WHERE w.partition = d.partition AND w.execution_key = d.execution_key AND w.state = 'waiting'
    ORDER BY w.priority, w.run_at, w.id
    LIMIT 1
  ) nxt ON true
  WHERE d.execution_key IS NOT NULL AND (h.head IS NULL OR h.head = d.id OR coalesce((
    SELECT c.state IN ('queued', 'running') AND c.partition = d.partition AND c.execution_key = d.execution_key
    FROM {{schema}}.jobs c WHERE c.id = h.head), false) = false)
), control_asked AS (
  SELECT DISTINCT s.partition, $4::text AS node, s.queue FROM seen s WHERE s.take
), stopped AS MATERIALIZED (
  -- As in claim_batch: a job of a queue paused (or stopped) in Postgres is queued, not taken.
  {{> stopped_queues}}
), mixed AS MATERIALIZED (
  -- Whether the batch has both keys that pass on to a next job (their head rows updated below)
  -- and keys left empty (their rows deleted).
  SELECT EXISTS (SELECT 1 FROM seen WHERE head_ctid IS NOT NULL AND next_id IS NULL)
     AND EXISTS (SELECT 1 FROM seen WHERE head_ctid IS NOT NULL AND next_id IS NOT NULL) AS both_ways
), current AS MATERIALIZED (
  -- The head rows locked in key order, kept where seq is still the one the snapshot read: a row an
  -- enqueue changed meanwhile is read again at its latest version, and the seq test drops it.
  -- They are found by the row version `seen` read (a TID scan per key, driven in key order), not
  -- by a second probe of the key index. (Every CTE over `done` is estimated at one row: the joins
  -- between them are probes or hashed subplans, never a nested loop of one CTE over another, which
  -- is quadratic in the batch.)
  -- Only in a batch written both ways: the update and the delete are two passes, each in key order
  -- but not in one order together, so without this pass first a statement holding a later key
  -- (updated) could wait for an earlier one (deleted) that an enqueue holds while waiting for the
  -- later one. Otherwise the one write locks the rows, in key order, as it writes them (this pass
  -- cost a row lock, a WAL record and a TID fetch per key).
  SELECT s.holder, s.partition, s.execution_key, s.seq, s.next_id, h.ctid AS head_ctid
  FROM (SELECT * FROM seen WHERE head_ctid IS NOT NULL AND (SELECT both_ways FROM mixed) ORDER BY partition, execution_key) s
  JOIN {{schema}}.execution_key_heads h ON h.ctid = s.head_ctid
  WHERE h.seq = s.seq
  FOR UPDATE OF h
), moved AS (
  -- The seq test again for the rows not locked above: an enqueue that changed one meanwhile made
  -- this write wait and read its latest version (as the lock does), which the test then drops.
  UPDATE {{schema}}.execution_key_heads h SET head = c.next_id, seq = h.seq + 1
  FROM (
    SELECT c.head_ctid, c.seq, c.next_id FROM current c WHERE c.next_id IS NOT NULL
    UNION ALL
    SELECT s.head_ctid, s.seq, s.next_id FROM (
      SELECT * FROM seen WHERE head_ctid IS NOT NULL AND next_id IS NOT NULL AND NOT (SELECT both_ways FROM mixed)
      ORDER BY partition, execution_key) s
  ) c
  WHERE h.ctid = c.head_ctid AND h.seq = c.seq
  RETURNING h.head
), created AS (
  INSERT INTO {{schema}}.execution_key_heads (partition, execution_key, head)
  SELECT s.partition, s.execution_key, s.next_id FROM seen s WHERE s.seq IS NULL AND s.next_id IS NOT NULL
  ORDER BY s.partition, s.execution_key
  ON CONFLICT DO NOTHING
  RETURNING head
), dropped AS (
  -- As `moved`, for the keys left empty.
  DELETE FROM {{schema}}.execution_key_heads h
  USING (
    SELECT c.holder, c.head_ctid, c.seq FROM current c WHERE c.next_id IS NULL
    UNION ALL
    SELECT s.holder, s.head_ctid, s.seq FROM (
      SELECT * FROM seen WHERE head_ctid IS NOT NULL AND next_id IS NULL AND NOT (SELECT both_ways FROM mixed)
      ORDER BY partition, execution_key) s
  ) c
  WHERE h.ctid = c.head_ctid AND h.seq = c.seq
  RETURNING c.holder
), promoted AS (
  -- "Not queued nor running" is waiting, written so the planner cannot pick the waiting index and
  -- filter it.
  UPDATE {{schema}}.jobs j SET state = 'queued'
  WHERE j.ctid = ANY(ARRAY(
      SELECT s.next_ctid FROM seen s
      WHERE (s.next_id IN (SELECT head FROM moved) OR s.next_id IN (SELECT head FROM created))
        AND NOT (s.take AND NOT EXISTS (SELECT 1 FROM stopped st WHERE st.partition = s.partition AND st.queue = s.queue))))
    AND j.state <> 'queued' AND j.state <> 'running'
  RETURNING j.id, j.partition, j.queue
), taken AS (
  -- As claim_batch's update; the same rules of the row version read hold.
  UPDATE {{schema}}.jobs j
  SET state = 'running', attempts = j.attempts + 1, locked_by = $4,
      locked_until = now() + make_interval(secs => $7::double precision / 1000), started_at = now()
  WHERE j.ctid = ANY(ARRAY(
      SELECT s.next_ctid FROM seen s
      WHERE (s.next_id IN (SELECT head FROM moved) OR s.next_id IN (SELECT head FROM created))
        AND s.take AND NOT EXISTS (SELECT 1 FROM stopped st WHERE st.partition = s.partition AND st.queue = s.queue)))
    AND j.state <> 'queued' AND j.state <> 'running'
  RETURNING j.id, j.partition, j.queue, j.type, j.payload, j.priority, j.attempts, j.max_attempts, j.timeout_ms,
            j.queue_key, j.execution_key, j.cancel_requested, j.lookup->>'$traceparent' AS traceparent, j.continuation,
            -- The taken version's address: its completion fetches the row there ($6).
            j.ctid AS tid
)
SELECT b.id AS not_done, NULL::text AS partition, NULL::text AS execution_key, NULL::text AS queue, NULL::uuid AS id,
       NULL::text AS type, NULL::jsonb AS payload, NULL::integer AS priority, NULL::integer AS attempts,
       NULL::integer AS max_attempts, NULL::integer AS timeout_ms, NULL::text AS queue_key, NULL::boolean AS cancel_requested,
       NULL::text AS traceparent, NULL::text AS continuation, NULL::tid AS tid
FROM unnest((SELECT $1::uuid[])::uuid[]) AS b(id)
WHERE (SELECT count(*) FROM done) < cardinality((SELECT $1::uuid[])::uuid[]) AND b.id NOT IN (SELECT id FROM done)
UNION ALL
-- Keys not settled here: written neither way (a seq an enqueue moved on, a head row another
-- statement created), or whose next job changed since the snapshot (cancelled). Hashed subplans,
-- not anti joins (every CTE over a DML's RETURNING is estimated at one row: see settle_execution_keys).
SELECT NULL, s.partition, s.execution_key, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM seen s
WHERE (s.seq IS NOT NULL OR s.next_id IS NOT NULL)
  AND coalesce(s.next_id IN (SELECT id FROM promoted) OR s.next_id IN (SELECT id FROM taken), false) = false
  AND s.holder NOT IN (SELECT holder FROM dropped)
UNION ALL
-- Queues a job was queued in: claimable now.
SELECT DISTINCT NULL::uuid, p.partition, NULL::text, p.queue, NULL::uuid, NULL::text, NULL::jsonb, NULL::integer, NULL::integer,
       NULL::integer, NULL::integer, NULL::text, NULL::boolean, NULL::text, NULL::text, NULL::tid
FROM promoted p
UNION ALL
-- Taken: the caller's running attempts now.
SELECT NULL, t.partition, t.execution_key, t.queue, t.id, t.type, t.payload, t.priority, t.attempts, t.max_attempts, t.timeout_ms,
       t.queue_key, t.cancel_requested, t.traceparent, t.continuation, t.tid
FROM taken t
