-- Every deployed version of every workflow app, newest deploy first, with the app's active version.
-- Versions are few (one row per deploy), so this reads them all; the cap guards a runaway deployer.
SELECT v.app_id, v.version, v.deployed_at, a.active_version, a.activated_at
FROM {{schema}}.wf_versions v
LEFT JOIN {{schema}}.wf_apps a ON a.app_id = v.app_id
ORDER BY v.app_id, v.deployed_at DESC, v.version DESC
LIMIT 1000
