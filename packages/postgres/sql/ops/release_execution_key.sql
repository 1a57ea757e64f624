-- Frees an execution key by hand: the running job holding it keeps running without it, and the
-- next job of the key may start. Returns the job that held it, with its queue (to wake).
UPDATE {{schema}}.jobs SET execution_key = NULL
WHERE partition = $1 AND execution_key = $2 AND state = 'running'
RETURNING id, queue
