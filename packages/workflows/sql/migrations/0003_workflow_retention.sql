-- Retention by partition drop (issue 18): finished workflows and their activity records are kept
-- in partitions by expiry day (UTC) and removed a whole day at a time with one DROP, as job
-- history is, instead of row-by-row deletes. Open workflows (running, pending, kept forever, or
-- expiring beyond the partitions made ahead) live in the `open` partitions, keyed 'infinity'.
--
-- A partition key must be part of every unique key, so `id` is unique per partition only:
-- wf_id_taken() keeps ids unique across them, and the foreign keys to wf_workflows (whose
-- cascades a dropped partition would never fire) go; whoever removes a workflow removes its
-- rows in every per-workflow table (see the README, "Retention").

-- The partition a workflow expiring at `expire_at` belongs in: its UTC day while that day has a
-- partition made ahead (ensure_wf_partitions makes them 8 days and more ahead, this uses 7, so a
-- node running it hourly is always ahead), else the open partition, where the row sweep removes it.
CREATE FUNCTION {{schema}}.wf_expire_day(expire_at timestamptz) RETURNS date
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN expire_at IS NULL THEN 'infinity'::date
    WHEN (expire_at AT TIME ZONE 'UTC')::date <= (now() AT TIME ZONE 'UTC')::date + 7 THEN (expire_at AT TIME ZONE 'UTC')::date
    ELSE 'infinity'::date
  END
$$;

-- Raised where a workflow id is taken in another partition than the one a row goes to: the same
-- unique_violation the open partition's key raises, so callers see one kind of error for both.
CREATE FUNCTION {{schema}}.wf_id_taken(id text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'workflow id % is taken', id USING ERRCODE = 'unique_violation';
END
$$;

CREATE TABLE {{schema}}.wf_workflows_p (
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
  expire_day       date        NOT NULL DEFAULT 'infinity',
  PRIMARY KEY (id, expire_day),
  FOREIGN KEY (app_id, version) REFERENCES {{schema}}.wf_versions (app_id, version)
) PARTITION BY RANGE (expire_day);

CREATE SEQUENCE {{schema}}.wf_activities_seq;

CREATE TABLE {{schema}}.wf_activities_p (
  workflow_id text        NOT NULL,
  activity    text        NOT NULL,
  dimension   text        NOT NULL DEFAULT '',
  type        text        NOT NULL,
  state       text        NOT NULL,
  job_id      text,
  input       jsonb,
  output      jsonb,
  hook        jsonb,
  attempts    int         NOT NULL DEFAULT 0,
  errors      jsonb       NOT NULL DEFAULT '[]',
  entered     int         NOT NULL DEFAULT 1,
  -- Start order within a workflow; a sequence, as identity columns do not span partitions here.
  seq         bigint      NOT NULL DEFAULT nextval('{{schema}}.wf_activities_seq'),
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  -- Always its workflow's expire_day: the finishing write moves both.
  expire_day  date        NOT NULL DEFAULT 'infinity',
  PRIMARY KEY (workflow_id, activity, dimension, expire_day)
) PARTITION BY RANGE (expire_day);

CREATE TABLE {{schema}}.wf_workflows_open PARTITION OF {{schema}}.wf_workflows_p FOR VALUES FROM ('infinity') TO (MAXVALUE);
CREATE TABLE {{schema}}.wf_activities_open PARTITION OF {{schema}}.wf_activities_p FOR VALUES FROM ('infinity') TO (MAXVALUE);

-- Creates the daily partitions of both tables from today (no row expires in the past) to days_ahead
-- (at least 8) days from now; every node runs it at start and hourly.
CREATE FUNCTION {{schema}}.ensure_wf_partitions(days_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  today date := (now() AT TIME ZONE 'UTC')::date;
  day date;
  created integer := 0;
  tbl text;
BEGIN
  FOR day IN SELECT generate_series(today, today + greatest(days_ahead, 8), interval '1 day')::date LOOP
    FOREACH tbl IN ARRAY ARRAY['wf_workflows', 'wf_activities'] LOOP
      IF to_regclass(format('%I.%I', '{{schema_raw}}', tbl || '_' || to_char(day, 'YYYYMMDD'))) IS NULL THEN
        BEGIN
          EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L)',
                         '{{schema_raw}}', tbl || '_' || to_char(day, 'YYYYMMDD'), '{{schema_raw}}', tbl, day, day + 1);
          created := created + 1;
        EXCEPTION WHEN duplicate_table THEN
          NULL; -- another node created it a moment ago
        END;
      END IF;
    END LOOP;
  END LOOP;
  RETURN created;
END
$$;

-- Drops the days whose whole range has passed `cutoff` (both tables' partitions in one DROP), then
-- the step links and hook registrations no workflow has any more; returns the days dropped. A
-- partition drop needs an exclusive lock on the parent: it waits at most a second, else that day
-- is left for the next round rather than queueing every workflow behind it.
CREATE FUNCTION {{schema}}.prune_wf_partitions(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  suffix text;
  dropped boolean := false;
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
      AND to_date(substring(c.relname from 'wf_workflows_(\d{8})$'), 'YYYYMMDD') + 1 <= (cutoff AT TIME ZONE 'UTC')::date
    ORDER BY 1
  LOOP
    BEGIN
      -- IF EXISTS: another node's round may have dropped it since the loop read the catalog.
      EXECUTE format('DROP TABLE IF EXISTS %I.%I, %I.%I', '{{schema_raw}}', 'wf_workflows_' || suffix, '{{schema_raw}}', 'wf_activities_' || suffix);
      dropped := true;
      RETURN NEXT suffix;
    EXCEPTION WHEN lock_not_available THEN
      NULL; -- busy now: the next round drops it
    END;
  END LOOP;
  IF dropped THEN
    DELETE FROM {{schema}}.wf_steps s WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = s.workflow_id);
    DELETE FROM {{schema}}.wf_hooks h WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = h.workflow_id);
  END IF;
END
$$;

-- The rows there are move over (those already past their expiry are not kept).
ALTER TABLE {{schema}}.wf_steps DROP CONSTRAINT IF EXISTS wf_steps_workflow_id_fkey;
ALTER TABLE {{schema}}.wf_hooks DROP CONSTRAINT IF EXISTS wf_hooks_workflow_id_fkey;
ALTER TABLE {{schema}}.wf_workflows RENAME TO wf_workflows_old;
ALTER TABLE {{schema}}.wf_activities RENAME TO wf_activities_old;
ALTER TABLE {{schema}}.wf_workflows_p RENAME TO wf_workflows;
ALTER TABLE {{schema}}.wf_activities_p RENAME TO wf_activities;
SELECT {{schema}}.ensure_wf_partitions(8);

INSERT INTO {{schema}}.wf_workflows
SELECT id, app_id, version, topic, partition, status, data, search, output, parent_id, parent_activity, parent_dimension,
       created_at, finished_at, expire_at,
       CASE WHEN status = -1 THEN 'infinity'::date ELSE {{schema}}.wf_expire_day(expire_at) END
FROM {{schema}}.wf_workflows_old WHERE expire_at IS NULL OR expire_at > now();

INSERT INTO {{schema}}.wf_activities
SELECT a.workflow_id, a.activity, a.dimension, a.type, a.state, a.job_id, a.input, a.output, a.hook, a.attempts, a.errors, a.entered,
       a.seq, a.started_at, a.finished_at, w.expire_day
FROM {{schema}}.wf_activities_old a JOIN {{schema}}.wf_workflows w ON w.id = a.workflow_id;
SELECT setval('{{schema}}.wf_activities_seq', coalesce((SELECT max(seq) FROM {{schema}}.wf_activities), 0) + 1, false);

DELETE FROM {{schema}}.wf_steps s WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = s.workflow_id);
DELETE FROM {{schema}}.wf_hooks h WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = h.workflow_id);
DROP TABLE {{schema}}.wf_activities_old, {{schema}}.wf_workflows_old;

CREATE INDEX wf_workflows_search ON {{schema}}.wf_workflows USING gin (search jsonb_path_ops);
CREATE INDEX wf_workflows_parent ON {{schema}}.wf_workflows (parent_id) WHERE parent_id IS NOT NULL;
-- The row sweep's path: open rows (pending, or expiring beyond the partitions) past their time.
CREATE INDEX wf_workflows_expire ON {{schema}}.wf_workflows (expire_at) WHERE expire_at IS NOT NULL;
CREATE INDEX wf_workflows_app_status ON {{schema}}.wf_workflows (app_id, status);
