-- A wake-up on the schema's notification channel, for nodes without the bus (one per enqueue
-- statement and partition, naming its queues). $1 channel, $2 payload.
SELECT pg_notify($1, $2)
