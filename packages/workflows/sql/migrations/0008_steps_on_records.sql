-- A step's link is its activity record (issue 18). wf_steps held one row per worker step or sleep,
-- job id → workflow, activity, pass and day: inserted with the step's job and deleted when the job
-- ended, ~9 WAL records a workflow of three steps (heap insert, key entry, heap delete, each step),
-- 28 % of the layer's records. The record already holds its step's job id from its insert (the job
-- is enqueued in the same write), so an index on it finds the record, and with it the workflow, its
-- day and pass: one key entry per step, written with the record's insert. A step's completion keeps
-- its job id, so the record's update stays HOT (the index's only column, and its predicate's, are
-- unchanged). A step transitions once as before: the store accepts one final outcome per job, and the
-- record it finds is then done (or failed, or its workflow no longer open), which the executor checks;
-- a retry gives the record another job, whose id replaces the old one's in the index.
--
-- The index is unique and made on each partition (not on the parent, where a unique key must hold
-- the partition key): a step's lookup (`job_id = ANY($1)`) reads a partition the day it is new, before
-- any statistics, and a unique single-column index is what tells the planner that each id matches one
-- record. Without it the planner took a default of 200 distinct ids per partition, expected most of
-- the day to match a batch's ids, read the whole day instead of probing the index, and its inflated
-- cost crossed jit_above_cost (JIT compiling took ~0.5 s a statement). A job's id is in one record
-- only: a step job's is a fresh uuid, an await's child id is made from its parent's and a random part.
-- Partial: the trigger's, hooks' waiting for a signal and fan-outs' records have no job id.
DO $$
DECLARE
  rel text;
BEGIN
  FOR rel IN
    SELECT c.relname FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace
    WHERE n.nspname = '{{schema_raw}}' AND p.relname = 'wf_activities'
  LOOP
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (job_id) WHERE job_id IS NOT NULL', rel || '_job', '{{schema_raw}}', rel);
  END LOOP;
END
$$;

-- make_wf_day of 0007, with a day's records' job index.
CREATE OR REPLACE FUNCTION {{schema}}.make_wf_day(day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  created integer := 0;
  tbl text;
  part text;
BEGIN
  FOREACH tbl IN ARRAY ARRAY['wf_workflows', 'wf_activities'] LOOP
    part := tbl || '_' || to_char(day, 'YYYYMMDD');
    IF to_regclass(format('%I.%I', '{{schema_raw}}', part)) IS NULL THEN
      BEGIN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L) WITH (fillfactor = 50)',
                       '{{schema_raw}}', part, '{{schema_raw}}', tbl, day, day + 1);
        IF tbl = 'wf_activities' THEN
          EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (job_id) WHERE job_id IS NOT NULL', part || '_job', '{{schema_raw}}', part);
        END IF;
        created := created + 1;
      EXCEPTION WHEN duplicate_table THEN
        NULL; -- another node created it a moment ago
      END;
    END IF;
  END LOOP;
  RETURN created;
END
$$;

DROP TABLE {{schema}}.wf_steps;

-- prune_wf_partitions of 0007, without the step links: records carried to 'infinity' carry their job
-- ids with them.
CREATE OR REPLACE FUNCTION {{schema}}.prune_wf_partitions(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  suffix text;
  day date;
  dropped boolean := false;
  cutoff_day date := (cutoff AT TIME ZONE 'UTC')::date;
BEGIN
  PERFORM set_config('lock_timeout', '1s', true);
  FOR suffix IN
    SELECT substring(c.relname from 'wf_workflows_(\d{8})$')
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace
    WHERE n.nspname = '{{schema_raw}}' AND p.relname = 'wf_workflows'
      AND c.relname ~ '^wf_workflows_\d{8}$'
      AND to_date(substring(c.relname from 'wf_workflows_(\d{8})$'), 'YYYYMMDD') + 1 <= cutoff_day
    ORDER BY 1
  LOOP
    day := to_date(suffix, 'YYYYMMDD');
    -- Stops at the first row kept longer: a day kept for a while costs a short scan per round.
    CONTINUE WHEN day + 7 > cutoff_day AND EXISTS (
      SELECT 1 FROM {{schema}}.wf_workflows WHERE start_day = day AND expire_at > cutoff);
    BEGIN
      WITH carried AS (
        UPDATE {{schema}}.wf_workflows SET start_day = 'infinity'
        WHERE start_day = day AND (expire_at IS NULL OR expire_at > cutoff)
        RETURNING id
      )
      UPDATE {{schema}}.wf_activities a SET start_day = 'infinity'
      FROM carried c WHERE a.start_day = day AND a.workflow_id = c.id;
      -- IF EXISTS: another node's round may have dropped it since the loop read the catalog.
      EXECUTE format('DROP TABLE IF EXISTS %I.%I, %I.%I', '{{schema_raw}}', 'wf_workflows_' || suffix, '{{schema_raw}}', 'wf_activities_' || suffix);
      dropped := true;
      RETURN NEXT suffix;
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
      NULL; -- busy now (or a transition waited on a carried row while the drop waited on it): the next round drops it
    END;
  END LOOP;
  IF dropped THEN
    DELETE FROM {{schema}}.wf_hooks h WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = h.workflow_id);
    DELETE FROM {{schema}}.wf_fanin f WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = f.workflow_id);
  END IF;
END
$$;
