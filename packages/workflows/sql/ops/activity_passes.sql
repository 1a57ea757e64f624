-- How many records (passes) an activity has outside the dimensions a transition holds in memory.
SELECT count(*)::int AS n FROM {{schema}}.wf_activities WHERE workflow_id = $1 AND activity = $2 AND NOT (dimension = ANY($3::text[]))
