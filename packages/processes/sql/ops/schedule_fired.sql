-- After a firing: the walk's cursor, the next fire time, the last fire and job, and the counters.
-- $1 id, $2 accounted_until, $3 next_fire_at, $4 last_fire_at (null: unchanged), $5 last_job_id
-- (null: unchanged), $6 fired, $7 missed, $8 overlap-skipped
UPDATE {{schema}}.schedules
SET accounted_until = greatest(accounted_until, $2),
    next_fire_at = $3,
    last_fire_at = CASE WHEN $4::timestamptz IS NULL THEN last_fire_at ELSE greatest(last_fire_at, $4::timestamptz) END,
    last_job_id = coalesce($5, last_job_id),
    fired_count = fired_count + $6,
    missed_count = missed_count + $7,
    overlap_skipped = overlap_skipped + $8,
    last_error = NULL
WHERE id = $1
