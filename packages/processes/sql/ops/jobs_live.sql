-- Which of these jobs are still live (queued, waiting or running: finished ones are in history).
-- Its own statement, after the schedules' lock: a statement that waited for that lock still reads
-- with the snapshot it started with, which misses the job the firing holding the lock enqueued.
SELECT id FROM {{schema}}.jobs WHERE id = ANY ($1::uuid[])
