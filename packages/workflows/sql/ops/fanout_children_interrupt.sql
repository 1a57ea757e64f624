-- Interrupts up to $4 running children of one fan-out (a parent's activity and pass) in one
-- statement, locked in id order; $7: the child graph's expire (-1: kept). What a stop-children job
-- runs a batch at a time, so thousands of siblings cost a few statements per batch, not per child.
-- Kept until their expire like any finished workflow.
UPDATE {{schema}}.wf_workflows AS w
SET status = -1000000000, finished_at = now(),
    output = jsonb_build_object('interrupted', true, 'reason', $5::text, 'code', $6::int),
    expire_at = CASE WHEN $7::int >= 0 THEN now() + make_interval(secs => $7::int) END
WHERE w.id IN (
  SELECT id FROM {{schema}}.wf_workflows
  WHERE parent_id = $1 AND parent_activity = $2 AND parent_dimension = $3 AND (status > 0 OR status = -1)
  ORDER BY id LIMIT $4 FOR UPDATE
) AND (w.status > 0 OR w.status = -1)
RETURNING w.id, w.app_id, w.version, w.topic, w.partition
