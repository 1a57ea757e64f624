-- Waiting activities for a hook topic; one workflow when $3 names it (the rule's match gave its id).
SELECT workflow_id, activity, dimension FROM {{schema}}.wf_hooks
WHERE app_id = $1 AND topic = $2 AND ($3::text IS NULL OR workflow_id = $3) ORDER BY registered_at LIMIT 1000
