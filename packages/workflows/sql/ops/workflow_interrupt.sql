-- Interrupts a workflow that is running or pending; returns nothing for a finished (or unknown) one.
-- Kept until its expire like any finished one: it moves to that day's partition with its records.
WITH w AS (
  UPDATE {{schema}}.wf_workflows
  SET status = -1000000000, finished_at = now(),
      output = jsonb_build_object('interrupted', true, 'reason', $2::text, 'code', $4::int),
      expire_at = n.expire_at, expire_day = {{schema}}.wf_expire_day(n.expire_at)
  FROM (SELECT CASE WHEN $3::int >= 0 THEN now() + make_interval(secs => $3::int) END AS expire_at) n
  WHERE id = $1 AND (status > 0 OR status = -1)
  RETURNING id, expire_day
), a AS (
  UPDATE {{schema}}.wf_activities a SET expire_day = w.expire_day
  FROM w WHERE w.expire_day <> 'infinity' AND a.workflow_id = w.id AND a.expire_day = 'infinity'
)
SELECT id FROM w
