-- One workflow as callers see it: one past its expiry is gone, even before its partition is dropped.
SELECT id, app_id, version, topic, partition, status, data, search, output, parent_id, created_at, finished_at, expire_at
FROM {{schema}}.wf_workflows WHERE id = $1 AND app_id = $2 AND (expire_at IS NULL OR expire_at > now())
