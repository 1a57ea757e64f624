-- Transitions of one workflow run one at a time: each locks its row first.
SELECT id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension, parent_index
FROM {{schema}}.wf_workflows WHERE id = $1 FOR UPDATE
