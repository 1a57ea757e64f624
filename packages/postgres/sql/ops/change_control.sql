-- One pause, resume or throttle change of a partition, applied to the row as it is now (never a
-- whole state written over another writer's change), and announced on the schema's notification
-- channel when the transaction commits: every node re-reads the row at once.
-- $1 partition, $2 'pause' | 'resume' | 'throttle', $3 queue (null: every queue of a throttle),
-- $4 throttle ms (-1 stops, 0 lifts), $5 node of a throttle (null: every node), $6 channel, $7 payload.
-- A throttle replaces the rule of the same queue and node; 0 only removes it.
WITH changed AS (
  INSERT INTO {{schema}}.partition_control AS c (partition, paused, throttles, epoch, version, updated_at)
  VALUES (
    $1,
    CASE WHEN $2::text = 'pause' THEN ARRAY[$3::text] ELSE '{}'::text[] END,
    CASE WHEN $2::text = 'throttle' AND $4::int <> 0
      THEN jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('ms', $4::int, 'queue', $3::text, 'node', $5::text)))
      ELSE '[]'::jsonb END,
    0, 1, now())
  ON CONFLICT (partition) DO UPDATE SET
    paused = CASE $2::text
      WHEN 'pause' THEN ARRAY(SELECT DISTINCT q FROM unnest(c.paused || $3::text) AS q ORDER BY q)
      WHEN 'resume' THEN array_remove(c.paused, $3::text)
      ELSE c.paused END,
    throttles = CASE WHEN $2::text = 'throttle' THEN
      (SELECT coalesce(jsonb_agg(r ORDER BY n), '[]'::jsonb)
       FROM jsonb_array_elements(c.throttles) WITH ORDINALITY AS t(r, n)
       WHERE (r->>'queue') IS DISTINCT FROM $3::text OR (r->>'node') IS DISTINCT FROM $5::text)
      || CASE WHEN $4::int <> 0
           THEN jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('ms', $4::int, 'queue', $3::text, 'node', $5::text)))
           ELSE '[]'::jsonb END
      ELSE c.throttles END,
    version = c.version + 1,
    updated_at = now()
  RETURNING paused, throttles, version
)
SELECT paused, throttles, version, pg_notify($6, $7) FROM changed
