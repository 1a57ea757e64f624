-- Interrupts a workflow that is running or pending; returns nothing for a finished (or unknown) one.
-- Kept until its expire like any finished one.
UPDATE {{schema}}.wf_workflows
SET status = -1000000000, finished_at = now(),
    output = jsonb_build_object('interrupted', true, 'reason', $2::text, 'code', $4::int),
    expire_at = CASE WHEN $3::int >= 0 THEN now() + make_interval(secs => $3::int) END
WHERE id = $1 AND (status > 0 OR status = -1)
RETURNING id
