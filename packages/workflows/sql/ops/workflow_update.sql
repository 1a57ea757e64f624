-- The workflow's data and semaphore after a transition; reaching 0 finishes it (output = data, kept `expire` seconds).
UPDATE {{schema}}.wf_workflows
SET status = $2::bigint, data = $3,
    output = CASE WHEN $2::bigint = 0 THEN $3 ELSE output END,
    finished_at = CASE WHEN $2::bigint = 0 THEN now() ELSE finished_at END,
    expire_at = CASE WHEN $2::bigint = 0 AND $4::int >= 0 THEN now() + make_interval(secs => $4::int) ELSE expire_at END
WHERE id = $1
