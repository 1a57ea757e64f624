SELECT active_version FROM {{schema}}.wf_apps WHERE app_id = $1
