-- The stored (merged) definition of one app version, to draw a workflow's graph.
SELECT definition FROM {{schema}}.wf_versions WHERE app_id = $1 AND version = $2
