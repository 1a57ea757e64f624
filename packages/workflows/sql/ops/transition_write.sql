-- What a transaction's transitions staged, written in one statement: the step jobs linked to the
-- activities they run ($1 job ids, $2 workflows, $3 activities, $4 dimensions), every activity record
-- changed ($5, a JSON array), the data and semaphore of every workflow moved ($6, a JSON array), the
-- first records of workflows this transaction started ($7), the outputs of fan-out children that
-- ended ($8), and the workflows this transaction started already finished ($9 ids, $10 their expire
-- in seconds). A NULL parameter writes nothing of its kind. Every row is changed by one part only, so
-- that the parts see the same snapshot (as parts of one statement do) changes nothing.
--
-- Activity records (a key left out is its default: attempts 0, errors [], entered 0, the rest NULL;
-- `mode`: 'u' known stored in the open partition, a plain update; 'i' known not stored, a plain
-- insert; absent, an upsert. A record marked 'u' that is not there after all is upserted, never lost):
-- `entered` is 1 for a record entered in this transaction, else 0: a record
-- entered again (not merely finished) counts, so exactly-once transitions keep it at 1. First records
-- ($7) cannot exist yet: a plain insert, without the conflict check (a fan-out writes thousands).
-- Records of open workflows go to the open partition. A workflow this write finishes (kept until an
-- expiry that has a daily partition) takes its records to that partition in this same statement:
-- those already written are deleted from the open partition and inserted there with the staged
-- changes laid over them, and its new records go there at once (no second statement that moves them).
-- New records take their `seq` in the order they were staged (the timeline's order).
-- Workflows: reaching 0 finishes one (output = data, kept `expire` seconds); `ended` one that failed or
-- interrupted itself (output: why), kept `expire` seconds too. A finished one moves to its expiry
-- day's partition. Only open workflows move (the partition key prunes the update to the open one).
-- Fan-in outputs: a child ends once, so a second row for the same place is a bug the key refuses.
WITH staged_workflows AS (
  SELECT r.*, CASE WHEN (r.status = 0 OR r.ended) AND r.expire >= 0 THEN now() + make_interval(secs => r.expire) END AS expire_at
  FROM jsonb_to_recordset($6::jsonb) AS r(id text, status bigint, data jsonb, expire int, ended boolean, output jsonb)
), finishing AS (
  -- Workflows this write leaves finished, with the daily partition their records go to.
  SELECT f.id, f.day FROM (
    SELECT id, {{schema}}.wf_expire_day(expire_at) AS day FROM staged_workflows WHERE expire_at IS NOT NULL
    UNION ALL
    SELECT s.id, {{schema}}.wf_expire_day(now() + make_interval(secs => s.expire))
    FROM unnest($9::text[], $10::int[]) AS s(id, expire) WHERE s.expire >= 0
  ) f WHERE f.day <> 'infinity'
), staged AS (
  -- `ord`: the order records were staged in, which new records take their `seq` (start order) in:
  -- taken here, in that order, as new records are written by more than one part below.
  SELECT r.*, fin.day
  FROM (
    SELECT o.*, CASE WHEN o.mode IS DISTINCT FROM 'u' THEN nextval('{{schema}}.wf_activities_seq') END AS seq
    FROM (
      SELECT * FROM ROWS FROM (jsonb_to_recordset($5::jsonb) AS (workflow_id text, activity text, dimension text, type text, state text, job_id text,
                                                                 input jsonb, output jsonb, hook jsonb, attempts int, errors jsonb, children_open int,
                                                                 entered int, mode text))
           WITH ORDINALITY AS r(workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open, entered,
                                mode, ord)
      ORDER BY ord
    ) o
  ) r
  LEFT JOIN finishing fin ON fin.id = r.workflow_id
), steps AS (
  INSERT INTO {{schema}}.wf_steps (job_id, workflow_id, activity, dimension)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
), updated AS (
  -- One key probe per record (a staged row is estimated at one row, so a nested loop); no id list
  -- as for the workflows below: with one, each probe walked the whole list (quadratic in the batch).
  UPDATE {{schema}}.wf_activities_open AS a
  SET state = r.state, job_id = r.job_id, input = r.input, output = r.output, hook = r.hook, attempts = coalesce(r.attempts, 0),
      errors = coalesce(r.errors, '[]'), children_open = r.children_open, finished_at = CASE WHEN r.state = 'done' THEN now() END,
      entered = a.entered + coalesce(r.entered, 0)
  FROM staged r
  WHERE r.day IS NULL AND r.mode = 'u'
    AND a.workflow_id = r.workflow_id AND a.activity = r.activity AND a.dimension = r.dimension
  RETURNING a.workflow_id, a.activity, a.dimension
), inserted AS (
  INSERT INTO {{schema}}.wf_activities_open (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open,
                                             entered, seq, finished_at)
  SELECT r.workflow_id, r.activity, r.dimension, r.type, r.state, r.job_id, r.input, r.output, r.hook, coalesce(r.attempts, 0), coalesce(r.errors, '[]'),
         r.children_open, coalesce(r.entered, 0), r.seq, CASE WHEN r.state = 'done' THEN now() END
  FROM staged r WHERE r.day IS NULL AND r.mode = 'i'
), activities AS (
  INSERT INTO {{schema}}.wf_activities_open AS a (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open,
                                                  entered, seq, finished_at)
  SELECT r.workflow_id, r.activity, r.dimension, r.type, r.state, r.job_id, r.input, r.output, r.hook, coalesce(r.attempts, 0), coalesce(r.errors, '[]'),
         r.children_open, coalesce(r.entered, 0), coalesce(r.seq, nextval('{{schema}}.wf_activities_seq')), CASE WHEN r.state = 'done' THEN now() END
  FROM staged r
  WHERE r.day IS NULL
    AND (r.mode IS NULL
         OR r.mode = 'u' AND NOT EXISTS (SELECT 1 FROM updated u WHERE u.workflow_id = r.workflow_id AND u.activity = r.activity AND u.dimension = r.dimension))
  ORDER BY r.ord
  ON CONFLICT (workflow_id, activity, dimension, expire_day) DO UPDATE
  SET state = EXCLUDED.state, job_id = EXCLUDED.job_id, input = EXCLUDED.input, output = EXCLUDED.output, hook = EXCLUDED.hook,
      attempts = EXCLUDED.attempts, errors = EXCLUDED.errors, children_open = EXCLUDED.children_open, finished_at = EXCLUDED.finished_at,
      entered = a.entered + EXCLUDED.entered
), moved AS (
  -- The id list makes it index probes of the finishing workflows: joined alone, the plan (generic, or
  -- with the 100 rows it expects of any JSON array) reads the whole open partition, every running
  -- workflow's records and the dead rows of those moved before, in each batch that finishes one.
  DELETE FROM {{schema}}.wf_activities_open a USING finishing fin
  WHERE a.workflow_id = ANY (ARRAY(SELECT id FROM finishing)) AND a.workflow_id = fin.id
  RETURNING a.*, fin.day
), settled AS (
  -- A finishing workflow's records, in its day's partition: the staged change where there is one.
  INSERT INTO {{schema}}.wf_activities (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open,
                                        entered, seq, started_at, finished_at, expire_day)
  SELECT coalesce(r.workflow_id, m.workflow_id), coalesce(r.activity, m.activity), coalesce(r.dimension, m.dimension),
         CASE WHEN r.workflow_id IS NULL THEN m.type ELSE r.type END,
         CASE WHEN r.workflow_id IS NULL THEN m.state ELSE r.state END,
         CASE WHEN r.workflow_id IS NULL THEN m.job_id ELSE r.job_id END,
         CASE WHEN r.workflow_id IS NULL THEN m.input ELSE r.input END,
         CASE WHEN r.workflow_id IS NULL THEN m.output ELSE r.output END,
         CASE WHEN r.workflow_id IS NULL THEN m.hook ELSE r.hook END,
         CASE WHEN r.workflow_id IS NULL THEN m.attempts ELSE coalesce(r.attempts, 0) END,
         CASE WHEN r.workflow_id IS NULL THEN m.errors ELSE coalesce(r.errors, '[]') END,
         CASE WHEN r.workflow_id IS NULL THEN m.children_open ELSE r.children_open END,
         coalesce(m.entered, 0) + coalesce(r.entered, 0),
         coalesce(m.seq, r.seq, nextval('{{schema}}.wf_activities_seq')),
         coalesce(m.started_at, now()),
         CASE WHEN r.workflow_id IS NULL THEN m.finished_at WHEN r.state = 'done' THEN now() END,
         coalesce(r.day, m.day)
  FROM (SELECT * FROM staged WHERE day IS NOT NULL) r
  FULL JOIN moved m ON m.workflow_id = r.workflow_id AND m.activity = r.activity AND m.dimension = r.dimension
  ORDER BY r.ord
), first_activities AS (
  INSERT INTO {{schema}}.wf_activities (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open, entered,
                                        finished_at, expire_day)
  SELECT r.workflow_id, r.activity, r.dimension, r.type, r.state, r.job_id, r.input, r.output, r.hook, coalesce(r.attempts, 0), coalesce(r.errors, '[]'),
         r.children_open, coalesce(r.entered, 0), CASE WHEN r.state = 'done' THEN now() END, coalesce(fin.day, 'infinity')
  FROM ROWS FROM (jsonb_to_recordset($7::jsonb) AS (workflow_id text, activity text, dimension text, type text, state text, job_id text,
                                                    input jsonb, output jsonb, hook jsonb, attempts int, errors jsonb, children_open int, entered int))
       WITH ORDINALITY AS r(workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open, entered, ord)
  LEFT JOIN finishing fin ON fin.id = r.workflow_id
  ORDER BY r.ord
), workflows AS (
  UPDATE {{schema}}.wf_workflows AS w
  SET status = r.status, data = r.data,
      output = CASE WHEN r.status = 0 THEN r.data WHEN r.ended THEN r.output ELSE w.output END,
      finished_at = CASE WHEN r.status = 0 OR r.ended THEN now() ELSE w.finished_at END,
      expire_at = CASE WHEN r.ended THEN r.expire_at ELSE coalesce(r.expire_at, w.expire_at) END,
      expire_day = CASE WHEN r.expire_at IS NULL THEN w.expire_day ELSE {{schema}}.wf_expire_day(r.expire_at) END
  FROM staged_workflows r
  -- The id list makes it an index lookup per workflow: joined alone, the planner, which expects 100
  -- rows of any JSON array, reads the whole open partition (every running workflow) instead.
  WHERE w.expire_day = 'infinity' AND w.id = ANY (ARRAY(SELECT id FROM staged_workflows)) AND w.id = r.id
), fanin AS (
  INSERT INTO {{schema}}.wf_fanin (workflow_id, activity, dimension, idx, child_id, output)
  SELECT r.workflow_id, r.activity, r.dimension, r.idx, r.child_id, r.output
  FROM jsonb_to_recordset($8::jsonb) AS r(workflow_id text, activity text, dimension text, idx int, child_id text, output jsonb)
)
SELECT 1 AS written
