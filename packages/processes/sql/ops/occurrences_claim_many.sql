-- Claims many occurrences at once: the first insert of each (schedule, fire time) wins; the rows
-- back are the ones this batch claimed. $1 schedule ids, $2 fire times (same order).
INSERT INTO {{schema}}.schedule_occurrences (schedule_id, fire_at, outcome, manual)
SELECT o.schedule_id, o.fire_at, 'enqueued', false
FROM unnest($1::text[], $2::timestamptz[]) AS o (schedule_id, fire_at)
ON CONFLICT (schedule_id, fire_at) DO NOTHING
RETURNING schedule_id, fire_at
