-- The statuses of many work items in one statement. $1 process, $2 names, $3 statuses (jsonb, same order).
UPDATE {{schema}}.process_work w
SET status = s.status
FROM unnest($2::text[], $3::jsonb[]) AS s (name, status)
WHERE w.process = $1 AND w.name = s.name
