-- $6, $7: how it answers (status 'error' or NULL, a code other than 200 or NULL).
INSERT INTO {{schema}}.wf_signals (app_id, topic, data, target, expire_at, status, code)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::int), $6, $7)
