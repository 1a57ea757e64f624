-- The steps still under way of several workflows, as steps_of does for one.
SELECT job_id FROM {{schema}}.wf_activities
WHERE workflow_id = ANY($1::text[]) AND job_id IS NOT NULL AND state IN ('running', 'waiting') AND type IN ('worker', 'hook')
