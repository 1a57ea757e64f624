-- plan: generic
-- What a transaction's transitions staged, written in one statement: every activity record changed
-- ($1-$15, a column each: arrays of one length, sent in binary, encodeColumns of @partita/postgres; the
-- JSON ones, $7-$9 and $11, each one JSON array whose nulls are NULLs: a jsonb[] parameter is parsed
-- element by element in the bind, each parse with its own allocations, which on a backend whose
-- memory went back to the OS cost 5-40 µs an element in page faults, against under 1 µs an element
-- for one JSON document), the data and
-- semaphore of every workflow moved ($16, a JSON array), and the outputs of fan-out children that
-- ended ($17, a JSON array). NULL parameters write nothing of their kind. The records were a JSON
-- array of objects: its text → jsonb input and jsonb_to_recordset's extraction of every field cost
-- more than the writes. The workflows stay one JSON array, fewer and smaller: its CTE, read twice,
-- is costed as 100 rows, and so joined by hash (an unnest is costed as 10, and joined by a nested
-- loop whose every probe ran the id list again). A step's link to its activity is the record's
-- job_id (migration 0008), written with the record.
-- Every row is changed by one part only, so that the parts see the same snapshot (as parts of one
-- statement do) changes nothing.
--
-- Every row goes to (and is looked up in) its workflow's partition, by `start_day`: the one a
-- workflow loaded by this transaction was read with; absent (a workflow this transaction started),
-- today's, which its insert took (start_day's default: the transaction's now()). A row never moves:
-- a workflow that finishes is updated in place with its records.
--
-- Activity records (a NULL element is its default: attempts 0, errors [], entered 0, the rest NULL;
-- `mode`: 'i' known not stored, a plain insert; 'u' known stored, and absent, an upsert. A plain
-- UPDATE joined to the staged records would be cheaper by a lock record each, but the statement runs
-- with a generic plan (`plan: generic`, test/plans.test.ts), and made under an empty table's statistics
-- that join read a whole index per record; the upsert's conflict check is a key probe whatever the
-- plan. A record marked 'u' that is not there after all is inserted, never lost):
-- `entered` is 1 for a record entered in this transaction, else 0: a record
-- entered again (not merely finished) counts, so exactly-once transitions keep it at 1. The first
-- records of a workflow this transaction started cannot exist yet: 'i', without the conflict check (a
-- fan-out writes thousands); their start_day is NULL (today's, as their workflow's insert took).
-- New records take their `seq` in the order they were staged (the timeline's order).
-- Workflows: reaching 0 finishes one (output = data, kept `expire` seconds); `ended` one that failed or
-- interrupted itself (output: why), kept `expire` seconds too.
-- Fan-in outputs: a child ends once, so a second row for the same place is a bug the key refuses.
WITH staged_workflows AS (
  SELECT r.id, r.status, r.data, r.ended, r.output, coalesce(r.start_day, (now() AT TIME ZONE 'UTC')::date) AS start_day,
         CASE WHEN (r.status = 0 OR r.ended) AND r.expire >= 0 THEN now() + make_interval(secs => r.expire) END AS expire_at
  FROM jsonb_to_recordset($16::jsonb) AS r(id text, status bigint, data jsonb, expire int, ended boolean, output jsonb, start_day date)
), seq_blocks AS (
  -- A record's `seq` (start order) is one sequence value per 1,024 records of the statement, times
  -- 1,024, plus the record's place in its block: one nextval per statement rather than one per record
  -- (each took its backend ~1.4 µs: the sequence's buffer lock, and its WAL record every 32 values),
  -- and none for a record the upsert finds stored (its candidate row's seq was a nextval each). Values
  -- stay unique and in start order: a later statement's blocks lie above an earlier one's, and rows
  -- stored with plain sequence values (before this form; nothing else inserts records) below both.
  SELECT array_agg(nextval('{{schema}}.wf_activities_seq') * 1024 ORDER BY i) AS starts
  FROM generate_series(0, (cardinality($1::text[]) - 1) / 1024) AS i
), staged AS NOT MATERIALIZED (
  -- `ord`: the order records were staged in, which new records take their `seq` (start order) from:
  -- computed here from `ord` alone, so no part below need read or write the records in that order (both
  -- sorted by it while each record drew its own nextval as it went). Read by two parts, each computes it
  -- again (the same rows: nothing in it is volatile but seq_blocks, a CTE of its own, evaluated once):
  -- cheaper than a tuplestore of every record, wide with its jsonb, written and read back.
  SELECT o.*, coalesce(o.day, (now() AT TIME ZONE 'UTC')::date) AS start_day,
         b.starts[((o.ord - 1) / 1024)::int + 1] + (o.ord - 1) % 1024 AS seq
  FROM seq_blocks b, (
    SELECT r.workflow_id, r.activity, r.dimension, r.type, r.state, r.job_id, nullif(r.input, 'null') AS input, nullif(r.output, 'null') AS output,
           nullif(r.hook, 'null') AS hook, r.attempts, nullif(r.errors, 'null') AS errors, r.children_open, r.entered, r.mode, r.day, r.ord
    -- The columns as set-returning functions of the select list, run in lockstep (a shorter one, or a
    -- NULL parameter's, padded with NULLs): value per call, where a ROWS FROM put each function's whole
    -- output in a tuplestore of its own first (15 per statement, a minimal tuple a row each).
    FROM (SELECT unnest($1::text[]) AS workflow_id, unnest($2::text[]) AS activity, unnest($3::text[]) AS dimension, unnest($4::text[]) AS type,
                 unnest($5::text[]) AS state, unnest($6::text[]) AS job_id, jsonb_array_elements($7::jsonb) AS input,
                 jsonb_array_elements($8::jsonb) AS output, jsonb_array_elements($9::jsonb) AS hook, unnest($10::int[]) AS attempts,
                 jsonb_array_elements($11::jsonb) AS errors, unnest($12::int[]) AS children_open, unnest($13::int[]) AS entered,
                 unnest($14::text[]) AS mode, unnest($15::date[]) AS day, generate_series(1, cardinality($1::text[])) AS ord) r
  ) o
), inserted AS (
  INSERT INTO {{schema}}.wf_activities (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open,
                                        entered, seq, finished_at, start_day)
  SELECT r.workflow_id, r.activity, r.dimension, r.type, r.state, r.job_id, r.input, r.output, r.hook, coalesce(r.attempts, 0), coalesce(r.errors, '[]'),
         r.children_open, coalesce(r.entered, 0), r.seq, CASE WHEN r.state = 'done' THEN now() END, r.start_day
  FROM staged r WHERE r.mode = 'i'
), activities AS (
  INSERT INTO {{schema}}.wf_activities AS a (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open,
                                             entered, seq, finished_at, start_day)
  SELECT r.workflow_id, r.activity, r.dimension, r.type, r.state, r.job_id, r.input, r.output, r.hook, coalesce(r.attempts, 0), coalesce(r.errors, '[]'),
         r.children_open, coalesce(r.entered, 0), r.seq, CASE WHEN r.state = 'done' THEN now() END,
         r.start_day
  FROM staged r
  WHERE r.mode IS NULL OR r.mode = 'u'
  ON CONFLICT (workflow_id, activity, dimension, start_day) DO UPDATE
  SET state = EXCLUDED.state, job_id = EXCLUDED.job_id, input = EXCLUDED.input, output = EXCLUDED.output, hook = EXCLUDED.hook,
      attempts = EXCLUDED.attempts, errors = EXCLUDED.errors, children_open = EXCLUDED.children_open, finished_at = EXCLUDED.finished_at,
      entered = a.entered + EXCLUDED.entered
), workflows AS (
  UPDATE {{schema}}.wf_workflows AS w
  SET status = r.status, data = r.data,
      output = CASE WHEN r.status = 0 THEN r.data WHEN r.ended THEN r.output ELSE w.output END,
      finished_at = CASE WHEN r.status = 0 OR r.ended THEN now() ELSE w.finished_at END,
      expire_at = CASE WHEN r.ended THEN r.expire_at ELSE coalesce(r.expire_at, w.expire_at) END
  FROM staged_workflows r
  -- The id list makes it an index lookup per workflow and partition: joined alone, the planner, which
  -- expects 100 rows of any JSON array, reads the whole partition (every workflow of the day) instead.
  -- In a generic plan (enable_seqscan off) the list stays an index condition; a semi-join on the ids
  -- read each day's whole index in one made before the tables were analyzed. (With custom plans on a
  -- day's partition still small, the list was planned as a sequential read with the list as a filter:
  -- 700 workflows on a day of 2,100, 21-26 ms against 7-9 as a semi-join.)
  WHERE w.start_day = r.start_day AND w.id = ANY (ARRAY(SELECT id FROM staged_workflows)) AND w.id = r.id
), fanin AS (
  INSERT INTO {{schema}}.wf_fanin (workflow_id, activity, dimension, idx, child_id, output)
  SELECT r.workflow_id, r.activity, r.dimension, r.idx, r.child_id, r.output
  FROM jsonb_to_recordset($17::jsonb) AS r(workflow_id text, activity text, dimension text, idx int, child_id text, output jsonb)
)
SELECT 1 AS written
