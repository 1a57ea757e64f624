-- The job at the head of each declared queue: the one its next claim takes (claim order: priority,
-- run_at, id, among queued jobs already due), with when it became due — how long the queue's next
-- job has waited (dashboards). One index probe per queue on jobs_claim_idx, whatever the depth.
SELECT q.partition, q.queue, head.id, head.run_at
FROM (SELECT DISTINCT partition, queue FROM {{schema}}.queues) q
CROSS JOIN LATERAL (
  SELECT j.id, j.run_at
  FROM {{schema}}.jobs j
  WHERE j.partition = q.partition AND j.queue = q.queue AND j.state = 'queued' AND j.run_at <= now()
  ORDER BY j.priority, j.run_at, j.id
  LIMIT 1
) head
