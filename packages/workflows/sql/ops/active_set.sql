INSERT INTO {{schema}}.wf_apps (app_id, active_version) VALUES ($1, $2)
ON CONFLICT (app_id) DO UPDATE SET active_version = EXCLUDED.active_version, activated_at = now()
