-- The partitions and queues of jobs just enqueued (the type's default queue is resolved by the
-- enqueue), to wake the engines that claim them.
SELECT DISTINCT partition, queue
FROM {{schema}}.jobs
WHERE id = ANY ($1::uuid[])
