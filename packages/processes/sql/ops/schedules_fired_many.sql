-- After a batched firing, per schedule (as schedule_fired does for one): the walk's cursor, the next
-- fire time, the last fire and job, and the counters. Arrays in the same order: $1 ids,
-- $2 accounted_until, $3 next_fire_at, $4 last_fire_at (null: unchanged), $5 last_job_id (null:
-- unchanged), $6 fired, $7 missed, $8 overlap-skipped.
UPDATE {{schema}}.schedules s
SET accounted_until = greatest(s.accounted_until, f.accounted_until),
    next_fire_at = f.next_fire_at,
    last_fire_at = CASE WHEN f.last_fire_at IS NULL THEN s.last_fire_at ELSE greatest(s.last_fire_at, f.last_fire_at) END,
    last_job_id = coalesce(f.last_job_id, s.last_job_id),
    fired_count = s.fired_count + f.fired,
    missed_count = s.missed_count + f.missed,
    overlap_skipped = s.overlap_skipped + f.overlap_skipped,
    last_error = NULL
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[], $5::uuid[], $6::int[], $7::int[], $8::int[])
  AS f (id, accounted_until, next_fire_at, last_fire_at, last_job_id, fired, missed, overlap_skipped)
WHERE s.id = f.id
