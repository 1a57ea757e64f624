SELECT id, topic FROM {{schema}}.wf_workflows WHERE parent_id = $1
