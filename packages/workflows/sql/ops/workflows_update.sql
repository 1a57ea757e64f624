-- The data and semaphore of every workflow a transaction moved, in one statement ($1: a JSON array).
-- Reaching 0 finishes one (output = data, kept `expire` seconds): it moves to its expiry day's
-- partition with its activity records (written before this, in the same transaction).
WITH w AS (
  UPDATE {{schema}}.wf_workflows AS w
  SET status = r.status, data = r.data,
      output = CASE WHEN r.status = 0 THEN r.data ELSE w.output END,
      finished_at = CASE WHEN r.status = 0 THEN now() ELSE w.finished_at END,
      expire_at = coalesce(n.expire_at, w.expire_at),
      expire_day = CASE WHEN n.expire_at IS NULL THEN w.expire_day ELSE {{schema}}.wf_expire_day(n.expire_at) END
  FROM jsonb_to_recordset($1::jsonb) AS r(id text, status bigint, data jsonb, expire int)
  CROSS JOIN LATERAL (SELECT CASE WHEN r.status = 0 AND r.expire >= 0 THEN now() + make_interval(secs => r.expire) END AS expire_at) n
  WHERE w.id = r.id
  RETURNING w.id, w.expire_day
)
UPDATE {{schema}}.wf_activities a SET expire_day = w.expire_day
FROM w WHERE w.expire_day <> 'infinity' AND a.workflow_id = w.id AND a.expire_day = 'infinity'
