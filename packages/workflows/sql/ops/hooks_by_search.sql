-- Waiting activities for a hook topic in workflows whose searchable fields contain $3 (never empty:
-- hookAll names a field). The GIN index holds non-empty fields only (migration 0006): `search <> '{}'`
-- lets a plan use it.
SELECT h.workflow_id, h.activity, h.dimension
FROM {{schema}}.wf_hooks h JOIN {{schema}}.wf_workflows w ON w.id = h.workflow_id
WHERE h.app_id = $1 AND h.topic = $2 AND w.search @> $3::jsonb AND w.search <> '{}'::jsonb
ORDER BY h.registered_at
