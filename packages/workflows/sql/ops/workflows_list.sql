-- An app's workflows, newest first, for listings (`partita workflows`). $2: status names to keep (null:
-- all); $3: searchable fields that must all equal these texts (numbers and booleans match their text,
-- so a value typed on a command line finds them); $4: topic (null: any); $5: at most this many.
-- Workflows past their expiry are gone, even before their partition is dropped.
SELECT id, app_id, version, topic, partition, status, search, parent_id, created_at, finished_at
FROM {{schema}}.wf_workflows w
WHERE app_id = $1
  AND (expire_at IS NULL OR expire_at > now())
  AND ($2::text[] IS NULL OR (CASE
        WHEN status = -1 THEN 'pending'
        WHEN status > 0 THEN 'running'
        WHEN status = 0 THEN 'done'
        WHEN status = -1000000000 THEN 'interrupted'
        WHEN status = -1000000001 THEN 'failed'
        ELSE 'other' END) = ANY ($2::text[]))
  AND NOT EXISTS (
        SELECT 1 FROM jsonb_each_text($3::jsonb) AS wanted(key, value)
        WHERE (w.search ->> wanted.key) IS DISTINCT FROM wanted.value)
  AND ($4::text IS NULL OR topic = $4)
ORDER BY created_at DESC, id DESC
LIMIT $5
