-- Waiting jobs whose turn came (their execution key passed to them) become claimable at once.
UPDATE {{schema}}.jobs SET state = 'queued', run_at = least(run_at, now())
WHERE id = ANY($1::uuid[]) AND state = 'waiting'
RETURNING id, queue
