-- A pending workflow starts: it is no longer removed at its pending expiry, and its held trigger
-- input (the trigger's 'pending' record) is handed back to run the trigger. Nothing when it is not
-- pending, or its pending time is over.
WITH w AS (
  UPDATE {{schema}}.wf_workflows SET status = 0, expire_at = NULL, pending_until = NULL
  WHERE id = $1 AND app_id = $2 AND status = -1 AND expire_at > now()
  RETURNING id, start_day
)
DELETE FROM {{schema}}.wf_activities a USING w
WHERE a.start_day = w.start_day AND a.workflow_id = w.id AND a.state = 'pending'
RETURNING a.activity, a.input
