-- Retention by start day (issue 18). 0003 kept a workflow and its records in partitions by expiry
-- day, so every finishing write moved them all (a DELETE and an INSERT per row and an index entry
-- per index of each, 44 % of the layer's WAL). Here a workflow and its records stay, from its insert
-- to its removal, in the partition of the UTC day it started (`start_day`): finishing is an update in
-- place. A day's partitions drop once the day is over and the finished workflows in it have all
-- expired; what must outlive them (still running, kept forever, or still kept after 7 days) is carried
-- to the 'infinity' partitions at the drop, where the row sweep removes it at its expiry (see
-- prune_wf_partitions and the README, "Retention").
--
-- As in 0003, `id` is unique per partition only (wf_id_taken() checks the others), and nothing holds
-- a foreign key to wf_workflows.

CREATE TABLE {{schema}}.wf_workflows_s (
  id               text        NOT NULL,
  app_id           text        NOT NULL,
  version          text        NOT NULL,
  topic            text        NOT NULL,
  partition        text        NOT NULL,
  status           bigint      NOT NULL DEFAULT -1,
  data             jsonb       NOT NULL DEFAULT '{}',
  search           jsonb       NOT NULL DEFAULT '{}',
  output           jsonb,
  parent_id        text,
  parent_activity  text,
  parent_dimension text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz,
  expire_at        timestamptz,
  parent_index     int,
  -- The UTC day of created_at (the transaction's now(), which its first records take too), or
  -- 'infinity' once carried out of its dropped day.
  start_day        date        NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')::date,
  PRIMARY KEY (id, start_day),
  FOREIGN KEY (app_id, version) REFERENCES {{schema}}.wf_versions (app_id, version)
) PARTITION BY RANGE (start_day);

CREATE TABLE {{schema}}.wf_activities_s (
  workflow_id   text        NOT NULL,
  activity      text        NOT NULL,
  dimension     text        NOT NULL DEFAULT '',
  type          text        NOT NULL,
  state         text        NOT NULL,
  job_id        text,
  input         jsonb,
  output        jsonb,
  hook          jsonb,
  attempts      int         NOT NULL DEFAULT 0,
  errors        jsonb       NOT NULL DEFAULT '[]',
  entered       int         NOT NULL DEFAULT 1,
  seq           bigint      NOT NULL DEFAULT nextval('{{schema}}.wf_activities_seq'),
  started_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  children_open int,
  -- Always its workflow's start_day.
  start_day     date        NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')::date,
  PRIMARY KEY (workflow_id, activity, dimension, start_day)
) PARTITION BY RANGE (start_day);

-- Rows carried out of a dropped day, removed by the row sweep at their expiry.
CREATE TABLE {{schema}}.wf_workflows_carried PARTITION OF {{schema}}.wf_workflows_s FOR VALUES FROM ('infinity') TO (MAXVALUE);
CREATE TABLE {{schema}}.wf_activities_carried PARTITION OF {{schema}}.wf_activities_s FOR VALUES FROM ('infinity') TO (MAXVALUE);

-- The partitions of one day, both tables. Half of each page is left free (as 0005 did for the open
-- partitions), so that a running workflow's row and records, rewritten by each of its transitions,
-- are updated HOT on their page (no index entry, no second page): with 30 % free, 2 of a record's 3
-- updates were not (a step's record is inserted running and rewritten done, with its output). The
-- price is disk: a day's rows take about twice the pages while they are kept.
CREATE FUNCTION {{schema}}.make_wf_day(day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  created integer := 0;
  tbl text;
BEGIN
  FOREACH tbl IN ARRAY ARRAY['wf_workflows', 'wf_activities'] LOOP
    IF to_regclass(format('%I.%I', '{{schema_raw}}', tbl || '_' || to_char(day, 'YYYYMMDD'))) IS NULL THEN
      BEGIN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L) WITH (fillfactor = 50)',
                       '{{schema_raw}}', tbl || '_' || to_char(day, 'YYYYMMDD'), '{{schema_raw}}', tbl, day, day + 1);
        created := created + 1;
      EXCEPTION WHEN duplicate_table THEN
        NULL; -- another node created it a moment ago
      END;
    END IF;
  END LOOP;
  RETURN created;
END
$$;

-- The old layout's rows move over (those already past their expiry are not kept) into the partitions
-- of the days they started.
ALTER TABLE {{schema}}.wf_workflows RENAME TO wf_workflows_old;
ALTER TABLE {{schema}}.wf_activities RENAME TO wf_activities_old;
-- Their partitions' (and those partitions' indexes') names are the new days' names.
DO $$
DECLARE
  rel text;
BEGIN
  FOR rel IN
    SELECT c.relname FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace
    WHERE n.nspname = '{{schema_raw}}' AND p.relname IN ('wf_workflows_old', 'wf_activities_old')
    UNION ALL
    SELECT ic.relname FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace
    JOIN pg_index x ON x.indrelid = c.oid
    JOIN pg_class ic ON ic.oid = x.indexrelid
    WHERE n.nspname = '{{schema_raw}}' AND p.relname IN ('wf_workflows_old', 'wf_activities_old')
  LOOP
    EXECUTE format('ALTER TABLE %I.%I RENAME TO %I', '{{schema_raw}}', rel, left(rel, 59) || '_old');
  END LOOP;
END
$$;
ALTER TABLE {{schema}}.wf_workflows_s RENAME TO wf_workflows;
ALTER TABLE {{schema}}.wf_activities_s RENAME TO wf_activities;
SELECT {{schema}}.make_wf_day(d)
FROM (SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date AS d FROM {{schema}}.wf_workflows_old
      UNION SELECT (now() AT TIME ZONE 'UTC')::date + generate_series(0, 2)) days;

INSERT INTO {{schema}}.wf_workflows (id, app_id, version, topic, partition, status, data, search, output, parent_id, parent_activity,
                                     parent_dimension, created_at, finished_at, expire_at, parent_index, start_day)
SELECT id, app_id, version, topic, partition, status, data, search, output, parent_id, parent_activity, parent_dimension,
       created_at, finished_at, expire_at, parent_index, (created_at AT TIME ZONE 'UTC')::date
FROM {{schema}}.wf_workflows_old WHERE expire_at IS NULL OR expire_at > now();

INSERT INTO {{schema}}.wf_activities (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, entered,
                                      seq, started_at, finished_at, children_open, start_day)
SELECT a.workflow_id, a.activity, a.dimension, a.type, a.state, a.job_id, a.input, a.output, a.hook, a.attempts, a.errors, a.entered,
       a.seq, a.started_at, a.finished_at, a.children_open, w.start_day
FROM {{schema}}.wf_activities_old a JOIN {{schema}}.wf_workflows w ON w.id = a.workflow_id;

DROP TABLE {{schema}}.wf_activities_old, {{schema}}.wf_workflows_old;

CREATE INDEX wf_workflows_search ON {{schema}}.wf_workflows USING gin (search jsonb_path_ops) WHERE search <> '{}'::jsonb;
CREATE INDEX wf_workflows_parent ON {{schema}}.wf_workflows (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX wf_workflows_app_status ON {{schema}}.wf_workflows (app_id, status);
-- The row sweep's path (expired_remove): rows carried out of their day, and pending workflows, past
-- their time. A running or finished workflow of a day has no entry.
CREATE INDEX wf_workflows_sweep ON {{schema}}.wf_workflows (expire_at) WHERE expire_at IS NOT NULL AND (status = -1 OR start_day = 'infinity');

-- A step's link names its workflow's partition, so the step path reads one partition, not every day's.
ALTER TABLE {{schema}}.wf_steps ADD COLUMN start_day date;
UPDATE {{schema}}.wf_steps s SET start_day = w.start_day FROM {{schema}}.wf_workflows w WHERE w.id = s.workflow_id;
DELETE FROM {{schema}}.wf_steps WHERE start_day IS NULL;
ALTER TABLE {{schema}}.wf_steps ALTER COLUMN start_day SET NOT NULL;
DELETE FROM {{schema}}.wf_hooks h WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = h.workflow_id);
DELETE FROM {{schema}}.wf_fanin f WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = f.workflow_id);

DROP FUNCTION {{schema}}.wf_expire_day(timestamptz);
DROP FUNCTION {{schema}}.ensure_wf_partitions(integer);

-- Makes the partitions of today to days_ahead days from now (workflows start today; the days ahead
-- are there when the date turns before the next round); every node runs it at start and hourly.
CREATE FUNCTION {{schema}}.ensure_wf_partitions(days_ahead integer) RETURNS integer
LANGUAGE sql AS $$
  SELECT coalesce(sum({{schema}}.make_wf_day(d::date)), 0)::integer
  FROM generate_series((now() AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date + greatest(days_ahead, 2), interval '1 day') d
$$;

-- Drops the days that are over at `cutoff` and whose workflows have expired, and returns them. A day
-- still holding a finished workflow kept past `cutoff` waits for it, 7 days at most; then, as always
-- for what must outlive its day (a workflow still running, one kept forever), its rows and records
-- are carried to the 'infinity' partitions first (an update of their partition key: a transaction
-- waiting on such a row's lock gets a serialization failure and runs again), with their step links
-- pointed there. Each day is one subtransaction: it waits at most a second for a lock (the drop's on
-- the parents, the carry's on a row a transition holds), else the day is left for the next round.
-- Then the step links, hook registrations and fan-in outputs no workflow has any more go.
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
      ), records AS (
        UPDATE {{schema}}.wf_activities a SET start_day = 'infinity'
        FROM carried c WHERE a.start_day = day AND a.workflow_id = c.id
        RETURNING a.job_id
      )
      UPDATE {{schema}}.wf_steps s SET start_day = 'infinity'
      WHERE s.job_id IN (SELECT job_id FROM records WHERE job_id IS NOT NULL);
      -- IF EXISTS: another node's round may have dropped it since the loop read the catalog.
      EXECUTE format('DROP TABLE IF EXISTS %I.%I, %I.%I', '{{schema_raw}}', 'wf_workflows_' || suffix, '{{schema_raw}}', 'wf_activities_' || suffix);
      dropped := true;
      RETURN NEXT suffix;
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
      NULL; -- busy now (or a transition waited on a carried row while the drop waited on it): the next round drops it
    END;
  END LOOP;
  IF dropped THEN
    DELETE FROM {{schema}}.wf_steps s WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = s.workflow_id);
    DELETE FROM {{schema}}.wf_hooks h WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = h.workflow_id);
    DELETE FROM {{schema}}.wf_fanin f WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = f.workflow_id);
  END IF;
END
$$;
