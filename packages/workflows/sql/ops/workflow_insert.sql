INSERT INTO {{schema}}.wf_workflows (id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension)
VALUES ($1, $2, $3, $4, $5, 0, '{}', $6, $7, $8, $9)
