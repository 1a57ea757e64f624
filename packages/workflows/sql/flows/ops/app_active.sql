-- The version new workflows of a flow's app start on (the workflows plugin's table): startAll activates only when it differs.
SELECT active_version FROM {{schema}}.wf_apps WHERE app_id = $1
