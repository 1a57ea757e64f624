DELETE FROM {{schema}}.wf_hooks WHERE workflow_id = ANY($1::text[])
