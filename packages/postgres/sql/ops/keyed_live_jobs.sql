-- Every live job of a partition that holds or waits for an execution key, oldest first: what a
-- new Global leader rebuilds holders and waiters from when the snapshot is behind.
SELECT id, state, execution_key FROM {{schema}}.jobs
WHERE partition = $1 AND execution_key IS NOT NULL AND state IN ('running', 'waiting')
ORDER BY created_at, id
