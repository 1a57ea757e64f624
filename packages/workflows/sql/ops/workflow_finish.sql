-- A workflow that failed or interrupted itself: its output says why; kept until its expire like any
-- finished one, so it moves to that day's partition with its activity records (flushed before this).
WITH w AS (
  UPDATE {{schema}}.wf_workflows
  SET output = $2, finished_at = now(), expire_at = n.expire_at, expire_day = {{schema}}.wf_expire_day(n.expire_at)
  FROM (SELECT CASE WHEN $3::int >= 0 THEN now() + make_interval(secs => $3::int) END AS expire_at) n
  WHERE id = $1
  RETURNING id, expire_day
)
UPDATE {{schema}}.wf_activities a SET expire_day = w.expire_day
FROM w WHERE w.expire_day <> 'infinity' AND a.workflow_id = w.id AND a.expire_day = 'infinity'
