-- Claims one occurrence: the first insert of (schedule, fire time) wins, any later one returns no row.
INSERT INTO {{schema}}.schedule_occurrences (schedule_id, fire_at, outcome, manual)
VALUES ($1, $2, 'enqueued', $3)
ON CONFLICT (schedule_id, fire_at) DO NOTHING
RETURNING fire_at
