-- One keyset page of workflows, newest first: an app (or all), a status class, a searchable field
-- (either of two encodings: the text and the typed value, as pub's `search` may hold either).
-- Status is the executor's semaphore: -1 pending, > 0 open activities, 0 done,
-- -1000000000 interrupted, -1000000001 failed.
SELECT id, app_id, version, topic, partition, status, search, created_at, finished_at, parent_id
FROM {{schema}}.wf_workflows
WHERE ($1::text IS NULL OR app_id = $1)
  AND ($2::text IS NULL
       OR ($2 = 'pending' AND status = -1)
       OR ($2 = 'running' AND status > 0)
       OR ($2 = 'done' AND status = 0)
       OR ($2 = 'interrupted' AND status = -1000000000)
       OR ($2 = 'failed' AND status = -1000000001))
  -- `search <> '{}'`: implied by a field's match, and the predicate of the partial GIN index.
  AND ($3::jsonb IS NULL OR ((search @> $3::jsonb OR search @> $4::jsonb) AND search <> '{}'::jsonb))
  AND ($5::timestamptz IS NULL OR (created_at, id) < ($5::timestamptz, $6::text))
ORDER BY created_at DESC, id DESC
LIMIT $7
