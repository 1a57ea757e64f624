-- Records what many claimed occurrences became: their job, or why they have none.
-- $1 schedule ids, $2 fire times, $3 job ids (null: none), $4 outcomes (same order).
UPDATE {{schema}}.schedule_occurrences o
SET job_id = s.job_id, outcome = s.outcome
FROM unnest($1::text[], $2::timestamptz[], $3::uuid[], $4::text[]) AS s (schedule_id, fire_at, job_id, outcome)
WHERE o.schedule_id = s.schedule_id AND o.fire_at = s.fire_at
