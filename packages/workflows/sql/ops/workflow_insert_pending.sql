-- A workflow published with `pending`: status -1, nothing run; removed at expire_at unless resumed first.
INSERT INTO {{schema}}.wf_workflows (id, app_id, version, topic, partition, status, data, search, expire_at)
VALUES ($1, $2, $3, $4, $5, -1, '{}', $6, now() + make_interval(secs => $7::double precision))
