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
-- Every lookup here is a per-key probe (a scalar subquery or a LATERAL with LIMIT on an index, a
-- TID scan), never a join the planner may turn around: when the table's statistics are stale
-- (say, analyzed while it was empty), a join it believes is one row long became a nested loop over
-- every live job for every key, seconds per call.
WITH input AS (
  SELECT DISTINCT t.partition, t.execution_key
  FROM unnest($1::text[], $2::text[]) AS t(partition, execution_key)
  WHERE t.execution_key IS NOT NULL
), seen AS MATERIALIZED (
  SELECT i.partition, i.execution_key, h.seq, nxt.id AS next_id, nxt.ctid AS next_ctid
  FROM input i
  LEFT JOIN {{schema}}.execution_key_heads h ON h.partition = i.partition AND h.execution_key = i.execution_key
  LEFT JOIN LATERAL (
    SELECT w.id, w.ctid FROM {{schema}}.jobs w
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
      WHERE (s.next_id IN (SELECT head FROM moved) OR s.next_id IN (SELECT head FROM created))))
    AND j.state <> 'queued' AND j.state <> 'running'
  RETURNING j.id, j.partition, j.queue, j.execution_key
)
SELECT p.partition, p.execution_key, p.queue, false AS retry
FROM promoted p
UNION ALL
-- Keys not settled: the promoted job of a key is its next_id. Hashed subplans, not anti joins:
-- every CTE over a DML's RETURNING is estimated at one row, and the planner made such joins a
-- nested loop, every key against every written job (quadratic: ~8 ms of a 22 ms statement of 450
-- keys).
SELECT s.partition, s.execution_key, NULL, true
FROM seen s
WHERE (s.seq IS NOT NULL OR s.next_id IS NOT NULL)
  AND coalesce(s.next_id IN (SELECT id FROM promoted), false) = false
  AND (s.partition, s.execution_key) NOT IN (SELECT partition, execution_key FROM dropped)
