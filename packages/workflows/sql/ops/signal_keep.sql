INSERT INTO {{schema}}.wf_signals (app_id, topic, data, expire_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4::int))
