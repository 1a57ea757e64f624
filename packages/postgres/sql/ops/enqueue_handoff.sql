-- One job enqueued straight into an idle node's hands: inserted as that node's running attempt 1
-- (leased for $16 ms, as a claim would lease it), so the node starts it from the hand-off message
-- without a claim round trip. Parameters 1-14 as enqueue_one's ($14: the continuation mark, which
-- the hand-off message carries too). A held queue key refuses it (no row). The node hands it back
-- (queued, attempt not counted) if it cannot run it; if the node is gone, its lease expires and
-- the job is rescued like any other. A queue the control row stops for that node (paused, or
-- throttled to -1) gets the job queued, as a claim would have left it, whether or not the node has
-- heard of the pause yet: `state` tells the caller not to hand it over.
WITH control_asked AS (
  SELECT $2::text AS partition, $15::text AS node, $3::text AS queue
), stopped AS MATERIALIZED (
  {{> stopped_queues}}
), handed AS (
  SELECT NOT EXISTS (SELECT 1 FROM stopped) AS yes
)
INSERT INTO {{schema}}.jobs AS j
  (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
   queue_key, execution_key, lookup, lookup_index, continuation, state, attempts, locked_by, locked_until, started_at)
SELECT $1::uuid, $2::text, $3::text, $4::text, $5::jsonb, $6::integer, coalesce($7::timestamptz, now()), $8::integer,
       $9::integer, $10::text, $11::text, $12::jsonb, $13::jsonb, $14::text,
       CASE WHEN h.yes THEN 'running' ELSE 'queued' END, CASE WHEN h.yes THEN 1 ELSE 0 END,
       CASE WHEN h.yes THEN $15::text END,
       CASE WHEN h.yes THEN now() + make_interval(secs => $16::double precision / 1000) END,
       CASE WHEN h.yes THEN now() END
FROM handed h
ON CONFLICT (partition, queue_key) WHERE queue_key IS NOT NULL DO NOTHING
RETURNING j.id, j.queue, j.type, j.payload, j.priority, j.attempts, j.max_attempts, j.timeout_ms, j.queue_key, j.state
