-- Locks the head rows of these execution keys ($1 partitions, $2 keys, pairwise) in key order, as
-- enqueue and settle_execution_keys lock them, for a settle that lost its race with enqueues of a
-- busy key: run in a transaction before settle_execution_keys, it makes the enqueues wait, so the
-- settle's fresh snapshot has seen every job parked behind the key and its write cannot be refused.
SELECT h.partition
FROM {{schema}}.execution_key_heads h
JOIN unnest($1::text[], $2::text[]) AS t(partition, execution_key)
  ON h.partition = t.partition AND h.execution_key = t.execution_key
ORDER BY h.partition, h.execution_key
FOR UPDATE OF h
