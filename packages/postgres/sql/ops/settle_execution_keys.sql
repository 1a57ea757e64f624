-- Gives each of these execution keys ($1 partitions, $2 keys, pairwise) its next head once its
-- head has left: the first waiting job in claim order becomes queued (and claimable). Run after
-- every statement that ends, requeues or drops a keyed job (complete, fail, release, rescue,
-- cancel, delete, a key released by hand) and by maintenance for heads whose job is gone. A key
-- whose head is live (queued or running, still under the key) is left alone; one with no waiting
-- job loses its head row.
--
-- An enqueue that parked jobs behind the head after this statement's snapshot bumped the row's
-- seq: the head rows are locked (in key order, as enqueue locks them) and only those whose seq is
-- still the one read are written. The others come back as `retry`, with keys whose promoted job
-- vanished meanwhile (cancelled), for the caller to settle again with a fresh snapshot.
WITH input AS (
  SELECT DISTINCT t.partition, t.execution_key FROM unnest($1::text[], $2::text[]) AS t(partition, execution_key)
  WHERE t.execution_key IS NOT NULL
), seen AS MATERIALIZED (
  SELECT i.partition, i.execution_key, h.seq, nxt.id AS next_id
  FROM input i
  LEFT JOIN {{schema}}.execution_key_heads h ON h.partition = i.partition AND h.execution_key = i.execution_key
  LEFT JOIN LATERAL (
    SELECT w.id FROM {{schema}}.jobs w
    WHERE w.partition = i.partition AND w.execution_key = i.execution_key AND w.state = 'waiting'
    ORDER BY w.priority, w.run_at, w.id
    LIMIT 1
  ) nxt ON true
  WHERE NOT EXISTS (
    SELECT 1 FROM {{schema}}.jobs c
    WHERE c.id = h.head AND c.partition = i.partition AND c.execution_key = i.execution_key AND c.state IN ('queued', 'running'))
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
  UPDATE {{schema}}.jobs j SET state = 'queued'
  FROM (SELECT head FROM moved UNION ALL SELECT head FROM created) n
  WHERE j.id = n.head AND j.state = 'waiting'
  RETURNING j.id, j.partition, j.queue, j.execution_key
)
SELECT p.partition, p.execution_key, p.queue, false AS retry FROM promoted p
UNION ALL
SELECT s.partition, s.execution_key, NULL, true FROM seen s
WHERE (s.seq IS NOT NULL OR s.next_id IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM promoted p WHERE p.partition = s.partition AND p.execution_key = s.execution_key)
  AND NOT EXISTS (SELECT 1 FROM dropped d WHERE d.partition = s.partition AND d.execution_key = s.execution_key)
