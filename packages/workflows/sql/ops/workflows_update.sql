-- The data and semaphore of every workflow a transaction moved, in one statement ($1: a JSON array).
-- Reaching 0 finishes one (output = data, kept `expire` seconds).
UPDATE {{schema}}.wf_workflows AS w
SET status = r.status, data = r.data,
    output = CASE WHEN r.status = 0 THEN r.data ELSE w.output END,
    finished_at = CASE WHEN r.status = 0 THEN now() ELSE w.finished_at END,
    expire_at = CASE WHEN r.status = 0 AND r.expire >= 0 THEN now() + make_interval(secs => r.expire) ELSE w.expire_at END
FROM jsonb_to_recordset($1::jsonb) AS r(id text, status bigint, data jsonb, expire int)
WHERE w.id = r.id
