-- The steps of a workflow still under way: the jobs of its worker and sleep records still running or
-- waiting (a record holds its step's job id; an await's holds its child's id, not a job's).
SELECT job_id FROM {{schema}}.wf_activities
WHERE workflow_id = $1 AND job_id IS NOT NULL AND state IN ('running', 'waiting') AND type IN ('worker', 'hook')
