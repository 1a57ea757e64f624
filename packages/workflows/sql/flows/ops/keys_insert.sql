-- Lookup rows of flow jobs created together ($1: JSON array of { flow, key, value, job_id }).
INSERT INTO {{schema}}.flow_keys (flow, key, value, job_id)
SELECT r.flow, r.key, r.value, r.job_id
FROM jsonb_to_recordset($1::jsonb) AS r (flow text, key text, value text, job_id text)
ON CONFLICT DO NOTHING
