-- The rows of `control_asked` (columns partition, node, queue) whose queue the partition's control
-- row stops for that node: paused, or throttled to -1 by the most specific rule that matches
-- (node + queue > node > queue > partition-wide; at one level a -1 wins), as queueThrottle in
-- @partita/protocol decides. The engine obeys the same row once it has read it; reading it in the
-- statement that takes jobs closes the gap until then: a job enqueued after a pause committed is
-- visible only to a snapshot that also sees the pause. One primary-key probe per partition.
SELECT a.partition, a.queue
FROM control_asked a
JOIN {{schema}}.partition_control c ON c.partition = a.partition
WHERE a.queue = ANY (c.paused)
   OR (c.throttles <> '[]'::jsonb AND coalesce((
        SELECT (r->>'ms')::integer < 0
        FROM jsonb_array_elements(c.throttles) AS r
        WHERE coalesce(r->>'node' = a.node, true) AND coalesce(r->>'queue' = a.queue, true)
        ORDER BY (r->>'node' IS NOT NULL)::integer * 2 + (r->>'queue' IS NOT NULL)::integer DESC, (r->>'ms')::integer < 0 DESC
        LIMIT 1), false))
