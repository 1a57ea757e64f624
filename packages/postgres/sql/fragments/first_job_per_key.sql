-- The jobs of a claim's `candidates` (columns id, row_at, execution_key, priority, run_at) it may
-- start: every unkeyed one, and one job per execution key (claim_batch, claim_rate_limited), with
-- the address of the version the claim locked (row_at: its ctid). $1 is the partition.
--
-- One job per key per claim: the first in order (the others are unlocked at commit), and only
-- if this claim gets the key's try-lock. A claim running beside this one skipped the first job
-- (row-locked here) and would take the next: the lock makes it skip the key instead of running
-- into the unique index. (Only one that read just before this claim committed can still meet
-- it; the store retries that one.) Volatile, so it runs on the winners only, one lock per key.
-- Those locks live in the server's shared lock table (about 12,000 entries with the default
-- max_locks_per_transaction and max_connections, shared by every database and application), so
-- one claim takes at most 512 keys, the first in claim order; the claim reports the rest as
-- found and the engine claims again. (512 measured faster than 256 and 1,000 in the keys bench.)
SELECT id, row_at FROM candidates WHERE execution_key IS NULL
UNION ALL
SELECT id, row_at FROM (
  SELECT id, row_at, execution_key FROM (
    SELECT DISTINCT ON (execution_key) id, row_at, execution_key, priority, run_at FROM candidates WHERE execution_key IS NOT NULL
    ORDER BY execution_key, priority, run_at, id
  ) first_of_key
  ORDER BY priority, run_at, id
  LIMIT 512
) first_keys
WHERE pg_try_advisory_xact_lock(hashtextextended('{{schema_raw}}/' || $1 || '/' || execution_key, 0))
