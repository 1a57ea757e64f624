SELECT id, topic, data FROM {{schema}}.wf_signals
WHERE app_id = $1 AND topic = ANY($2::text[]) AND expire_at > now() ORDER BY id FOR UPDATE SKIP LOCKED
