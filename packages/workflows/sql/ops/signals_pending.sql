-- Kept signals a workflow starting to wait may take: those naming it, and those naming no workflow.
SELECT id, topic, data, status, code FROM {{schema}}.wf_signals
WHERE app_id = $1 AND topic = ANY($2::text[]) AND (target IS NULL OR target = $3) AND expire_at > now()
ORDER BY id FOR UPDATE SKIP LOCKED
