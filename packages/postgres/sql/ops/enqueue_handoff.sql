-- One job enqueued straight into an idle node's hands: inserted as that node's running attempt 1
-- (leased for $16 ms, as a claim would lease it), so the node starts it from the hand-off message
-- without a claim round trip. Parameters 1-14 as enqueue_one's ($14: the continuation mark, which
-- the hand-off message carries too). A held queue key refuses it (no row). The node hands it back
-- (queued, attempt not counted) if it cannot run it; if the node is gone, its lease expires and
-- the job is rescued like any other.
INSERT INTO {{schema}}.jobs AS j
  (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
   queue_key, execution_key, lookup, lookup_index, continuation, state, attempts, locked_by, locked_until, started_at)
VALUES ($1::uuid, $2::text, $3::text, $4::text, $5::jsonb, $6::integer, coalesce($7::timestamptz, now()), $8::integer,
        $9::integer, $10::text, $11::text, $12::jsonb, $13::jsonb, $14::text,
        'running', 1, $15::text, now() + make_interval(secs => $16::double precision / 1000), now())
ON CONFLICT (partition, queue_key) WHERE queue_key IS NOT NULL DO NOTHING
RETURNING j.id, j.queue, j.type, j.payload, j.priority, j.attempts, j.max_attempts, j.timeout_ms, j.queue_key
