INSERT INTO {{schema}}.wf_hooks (app_id, topic, workflow_id, activity, dimension) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING
