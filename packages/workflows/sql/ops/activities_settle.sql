-- Workflows that finished in the transaction that started them: their activity records, written
-- after the workflow row, follow it to its expiry day's partition.
UPDATE {{schema}}.wf_activities a SET expire_day = w.expire_day
FROM {{schema}}.wf_workflows w
WHERE w.id = ANY($1::text[]) AND w.expire_day <> 'infinity' AND a.workflow_id = w.id AND a.expire_day = 'infinity'
