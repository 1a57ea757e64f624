DELETE FROM {{schema}}.wf_hooks WHERE workflow_id = $1
