INSERT INTO {{schema}}.wf_signals (app_id, topic, data, target, expire_at)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::int))
