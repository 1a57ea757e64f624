SELECT definition, hash FROM {{schema}}.wf_versions WHERE app_id = $1 AND version = $2
