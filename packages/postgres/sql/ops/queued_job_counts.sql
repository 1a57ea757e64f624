-- Due and scheduled jobs per queue of these partitions ($1), cluster-wide: what a node's roll-call
-- answer shows. Queued jobs only, so the count reads jobs_claim_idx and not the running or waiting rows.
SELECT partition, queue,
       count(*) FILTER (WHERE run_at <= now())::int AS queued,
       count(*) FILTER (WHERE run_at > now())::int AS scheduled
FROM {{schema}}.jobs
WHERE state = 'queued' AND partition = ANY($1::text[])
GROUP BY partition, queue
