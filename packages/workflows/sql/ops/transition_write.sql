-- What a transaction's transitions staged, written in one statement: the step jobs linked to the
-- activities they run ($1 job ids, $2 workflows, $3 activities, $4 dimensions), every activity record
-- changed ($5, a JSON array), the data and semaphore of every workflow moved ($6, a JSON array), the
-- first records of workflows this transaction started ($7) and the outputs of fan-out children that
-- ended ($8). A NULL parameter writes nothing of its kind. The parts touch different tables or
-- different rows, so that they see the same snapshot (as parts of one statement do) changes nothing.
--
-- Activity records: `entered` is 1 for a record entered in this transaction, else 0: a record
-- entered again (not merely finished) counts, so exactly-once transitions keep it at 1. First records
-- ($7) cannot exist yet: a plain insert, without the conflict check (a fan-out writes thousands).
-- Records go to the open partition (a finished workflow's move to its expiry day's partition takes
-- them along, in the executor's next statement, activities_settle), so the conflict target names it.
-- Workflows: reaching 0 finishes one (output = data, kept `expire` seconds); `ended` one that failed or
-- interrupted itself (output: why), kept `expire` seconds too. A finished one moves to its expiry
-- day's partition.
-- Fan-in outputs: a child ends once, so a second row for the same place is a bug the key refuses.
WITH steps AS (
  INSERT INTO {{schema}}.wf_steps (job_id, workflow_id, activity, dimension)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
), activities AS (
  INSERT INTO {{schema}}.wf_activities AS a (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open, entered, finished_at)
  SELECT r.workflow_id, r.activity, r.dimension, r.type, r.state, r.job_id, r.input, r.output, r.hook, r.attempts, coalesce(r.errors, '[]'), r.children_open,
         r.entered, CASE WHEN r.state = 'done' THEN now() END
  FROM jsonb_to_recordset($5::jsonb) AS r(workflow_id text, activity text, dimension text, type text, state text, job_id text,
                                          input jsonb, output jsonb, hook jsonb, attempts int, errors jsonb, children_open int, entered int)
  ON CONFLICT (workflow_id, activity, dimension, expire_day) DO UPDATE
  SET state = EXCLUDED.state, job_id = EXCLUDED.job_id, input = EXCLUDED.input, output = EXCLUDED.output, hook = EXCLUDED.hook,
      attempts = EXCLUDED.attempts, errors = EXCLUDED.errors, children_open = EXCLUDED.children_open, finished_at = EXCLUDED.finished_at,
      entered = a.entered + EXCLUDED.entered
), first_activities AS (
  INSERT INTO {{schema}}.wf_activities (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open, entered, finished_at)
  SELECT r.workflow_id, r.activity, r.dimension, r.type, r.state, r.job_id, r.input, r.output, r.hook, r.attempts, coalesce(r.errors, '[]'), r.children_open,
         r.entered, CASE WHEN r.state = 'done' THEN now() END
  FROM jsonb_to_recordset($7::jsonb) AS r(workflow_id text, activity text, dimension text, type text, state text, job_id text,
                                          input jsonb, output jsonb, hook jsonb, attempts int, errors jsonb, children_open int, entered int)
), workflows AS (
  UPDATE {{schema}}.wf_workflows AS w
  SET status = r.status, data = r.data,
      output = CASE WHEN r.status = 0 THEN r.data WHEN r.ended THEN r.output ELSE w.output END,
      finished_at = CASE WHEN r.status = 0 OR r.ended THEN now() ELSE w.finished_at END,
      expire_at = CASE WHEN r.ended THEN n.expire_at ELSE coalesce(n.expire_at, w.expire_at) END,
      expire_day = CASE WHEN n.expire_at IS NULL THEN w.expire_day ELSE {{schema}}.wf_expire_day(n.expire_at) END
  FROM jsonb_to_recordset($6::jsonb) AS r(id text, status bigint, data jsonb, expire int, ended boolean, output jsonb)
  CROSS JOIN LATERAL (SELECT CASE WHEN (r.status = 0 OR r.ended) AND r.expire >= 0 THEN now() + make_interval(secs => r.expire) END AS expire_at) n
  WHERE w.id = r.id
), fanin AS (
  INSERT INTO {{schema}}.wf_fanin (workflow_id, activity, dimension, idx, child_id, output)
  SELECT r.workflow_id, r.activity, r.dimension, r.idx, r.child_id, r.output
  FROM jsonb_to_recordset($8::jsonb) AS r(workflow_id text, activity text, dimension text, idx int, child_id text, output jsonb)
)
SELECT 1 AS written
