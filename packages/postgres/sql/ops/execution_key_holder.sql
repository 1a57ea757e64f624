-- The running job holding an execution key, if any (the unique index jobs_running_key_idx).
SELECT id FROM {{schema}}.jobs WHERE partition = $1 AND execution_key = $2 AND state = 'running'
