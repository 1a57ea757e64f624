-- The workflows of a batch of transitions, locked in one round trip and in id order (so batches on
-- different nodes that share workflows take their locks in the same order). `start_day` as text: a
-- date would come back as a JS Date in local time, and go back a day off.
SELECT id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension, parent_index,
       start_day::text AS start_day
FROM {{schema}}.wf_workflows WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE
