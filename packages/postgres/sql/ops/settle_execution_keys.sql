-- Gives each of these execution keys ($1 partitions, $2 keys, pairwise) its next head once its
-- head has left: the first waiting job in claim order becomes queued (and claimable). Run after
-- every statement that ends, requeues or drops a keyed job (fail, release, rescue, cancel, delete,
-- a key released by hand; complete_batch settles its keys itself, the same way, and hands here
-- only the keys a racing enqueue kept it from settling) and by maintenance for heads whose job is
-- gone. A key
-- whose head is live (queued or running, still under the key) is left alone; one with no waiting
-- job loses its head row.
--
-- An enqueue that parked jobs behind the head after this statement's snapshot bumped the row's
-- seq: the head rows are locked (in key order, as enqueue locks them) and only those whose seq is
-- still the one read are written. The others come back as `retry`, with keys whose promoted job
-- vanished meanwhile (cancelled), for the caller to settle again with a fresh snapshot.
--
-- Taking into hands: $3 names, per key, the queue whose next job the caller (an engine that just
-- completed the key's head) takes as its own running attempt: $4 its node id, $5 the lease ms, $6
-- the types it defines and $7 the continuations it runs (NULL: any). A next job of that queue, due,
-- of such a type and continuation, its queue not paused or stopped in the control row (the
-- engine may not have heard of a pause yet), goes from waiting straight to running (one row write and no
-- claim, where queued then claimed is two of each); any other is queued. $3 NULL takes nothing.
--
-- Every lookup here is a per-key probe (a scalar subquery or a LATERAL with LIMIT on an index, a
-- TID scan), never a join the planner may turn around: when the table's statistics are stale
-- (say, analyzed while it was empty), a join it believes is one row long became a nested loop over
-- every live job for every key, seconds per call.
WITH input AS (
  SELECT DISTINCT ON (t.partition, t.execution_key) t.partition, t.execution_key, t.take
  FROM unnest($1::text[], $2::text[], $3::text[]) AS t(partition, execution_key, take)
  WHERE t.execution_key IS NOT NULL
  ORDER BY t.partition, t.execution_key, t.take NULLS LAST
), control_asked AS (
  SELECT DISTINCT i.partition, $4::text AS node, i.take AS queue FROM input i WHERE i.take IS NOT NULL
), stopped AS MATERIALIZED (
  -- As in claim_batch: a job of a queue paused (or stopped) in Postgres is queued, not taken.
  {{> stopped_queues}}
), seen AS MATERIALIZED (
  SELECT i.partition, i.execution_key, h.seq, nxt.id AS next_id, nxt.ctid AS next_ctid,
         coalesce(nxt.queue = i.take AND nxt.run_at <= now() AND ($6::text[] IS NULL OR nxt.type = ANY($6::text[]))
                  AND NOT EXISTS (SELECT 1 FROM stopped st WHERE st.partition = i.partition AND st.queue = i.take)
                  AND (nxt.continuation IS NULL OR $7::text[] IS NULL OR nxt.continuation = ANY($7::text[])), false) AS take
  FROM input i
  LEFT JOIN {{schema}}.execution_key_heads h ON h.partition = i.partition AND h.execution_key = i.execution_key
  LEFT JOIN LATERAL (
    SELECT w.id, w.ctid, w.queue, w.run_at, w.type, w.continuation FROM {{schema}}.jobs w
    WHERE w.partition = i.partition AND w.execution_key = i.execution_key AND w.state = 'waiting'
    ORDER BY w.priority, w.run_at, w.id
    LIMIT 1
  ) nxt ON true
  WHERE h.head IS NULL OR coalesce((
    SELECT c.state IN ('queued', 'running') AND c.partition = i.partition AND c.execution_key = i.execution_key
    FROM {{schema}}.jobs c WHERE c.id = h.head), false) = false
), locked AS MATERIALIZED (
  SELECT h.partition, h.execution_key, h.seq
  FROM {{schema}}.execution_key_heads h JOIN seen s ON s.partition = h.partition AND s.execution_key = h.execution_key
  ORDER BY h.partition, h.execution_key
  FOR UPDATE OF h
), current AS (
  -- Keys whose row is as this snapshot read it; a key with no row yet (a retried or handed-back
  -- job) gets one below, or is retried when another statement made one meanwhile.
  SELECT s.* FROM seen s JOIN locked l ON l.partition = s.partition AND l.execution_key = s.execution_key AND l.seq = s.seq
), moved AS (
  UPDATE {{schema}}.execution_key_heads h SET head = c.next_id, seq = h.seq + 1
  FROM current c
  WHERE h.partition = c.partition AND h.execution_key = c.execution_key AND c.next_id IS NOT NULL
  RETURNING h.partition, h.execution_key, h.head
), created AS (
  INSERT INTO {{schema}}.execution_key_heads (partition, execution_key, head)
  SELECT s.partition, s.execution_key, s.next_id FROM seen s WHERE s.seq IS NULL AND s.next_id IS NOT NULL
  ORDER BY s.partition, s.execution_key
  ON CONFLICT DO NOTHING
  RETURNING partition, execution_key, head
), dropped AS (
  DELETE FROM {{schema}}.execution_key_heads h USING current c
  WHERE h.partition = c.partition AND h.execution_key = c.execution_key AND c.next_id IS NULL
  RETURNING h.partition, h.execution_key
), promoted AS (
  -- By the row versions the probe read (a TID scan whatever the statistics say); a job changed
  -- since (cancelled) is not found and its key comes back to settle again. "Not queued nor
  -- running" is waiting, written so the planner cannot pick the waiting index and filter it.
  UPDATE {{schema}}.jobs j SET state = 'queued'
  WHERE j.ctid = ANY(ARRAY(
      SELECT s.next_ctid FROM seen s
      WHERE NOT s.take AND (s.next_id IN (SELECT head FROM moved) OR s.next_id IN (SELECT head FROM created))))
    AND j.state <> 'queued' AND j.state <> 'running'
  RETURNING j.id, j.partition, j.queue, j.execution_key
), taken AS (
  -- As claim_batch's update; the same rules of the row version read hold.
  UPDATE {{schema}}.jobs j
  SET state = 'running', attempts = j.attempts + 1, locked_by = $4,
      locked_until = now() + make_interval(secs => $5::double precision / 1000), started_at = now()
  WHERE j.ctid = ANY(ARRAY(
      SELECT s.next_ctid FROM seen s
      WHERE s.take AND (s.next_id IN (SELECT head FROM moved) OR s.next_id IN (SELECT head FROM created))))
    AND j.state <> 'queued' AND j.state <> 'running'
  RETURNING j.id, j.partition, j.queue, j.type, j.payload, j.priority, j.attempts, j.max_attempts, j.timeout_ms,
            j.queue_key, j.execution_key, j.cancel_requested, j.run_at, j.lookup->>'$traceparent' AS traceparent,
            j.continuation
)
SELECT p.partition, p.execution_key, p.queue, false AS retry, NULL::uuid AS id, NULL::text AS type, NULL::jsonb AS payload,
       NULL::integer AS priority, NULL::integer AS attempts, NULL::integer AS max_attempts, NULL::integer AS timeout_ms,
       NULL::text AS queue_key, NULL::boolean AS cancel_requested, NULL::numeric AS run_at_epoch, NULL::text AS traceparent,
       NULL::text AS continuation
FROM promoted p
UNION ALL
-- Taken: the caller's running attempts now, in the columns of a claimed job (claim_batch).
SELECT t.partition, t.execution_key, t.queue, false, t.id, t.type, t.payload, t.priority, t.attempts, t.max_attempts,
       t.timeout_ms, t.queue_key, t.cancel_requested, extract(epoch FROM t.run_at), t.traceparent, t.continuation
FROM taken t
UNION ALL
-- Keys not settled: the promoted or taken job of a key is its next_id. Hashed subplans, not anti
-- joins: every CTE over a DML's RETURNING is estimated at one row, and the planner made the joins
-- against `taken` a nested loop, every key against every taken job (quadratic: ~8 ms of a 22 ms
-- statement of 450 keys).
SELECT s.partition, s.execution_key, NULL, true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM seen s
WHERE (s.seq IS NOT NULL OR s.next_id IS NOT NULL)
  AND coalesce(s.next_id IN (SELECT id FROM promoted) OR s.next_id IN (SELECT id FROM taken), false) = false
  AND (s.partition, s.execution_key) NOT IN (SELECT partition, execution_key FROM dropped)
