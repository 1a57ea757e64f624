SELECT id, app_id, version, topic, partition, status, data, search, output, parent_id, created_at, finished_at, expire_at
FROM {{schema}}.wf_workflows WHERE id = $1 AND app_id = $2
