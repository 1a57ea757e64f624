-- Live jobs only: queued (run_at may be in the future: "scheduled"), waiting, running.
-- Finished jobs leave this table, so claim cost does not grow with history.
CREATE TABLE {{schema}}.jobs (
  id              uuid PRIMARY KEY,
  partition       text NOT NULL,
  queue           text NOT NULL,
  type            text NOT NULL,
  payload         jsonb NOT NULL DEFAULT 'null',
  state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'waiting', 'running')),
  priority        integer NOT NULL DEFAULT 0,
  run_at          timestamptz NOT NULL DEFAULT now(),
  attempts        integer NOT NULL DEFAULT 0,
  max_attempts    integer NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
  timeout_ms      integer,
  queue_key       text,
  execution_key   text,
  lookup          jsonb,
  -- lookup with every value turned into an array of strings, so one GIN @> probe finds
  -- {customer: 42} and {tags: ['a','b']} alike
  lookup_index    jsonb,
  errors          jsonb NOT NULL DEFAULT '[]',
  progress        jsonb,
  locked_by       text,
  locked_until    timestamptz,
  rescues         integer NOT NULL DEFAULT 0,
  cancel_requested boolean NOT NULL DEFAULT false,
  created_at      timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz
) WITH (fillfactor = 80);

-- The claim path: due jobs of one queue in priority order. Partial, so running and waiting
-- rows (and other queues' backlogs) never enter the scan.
CREATE INDEX jobs_claim_idx ON {{schema}}.jobs (partition, queue, priority, run_at, id) WHERE state = 'queued';
-- Rescue and heartbeat.
CREATE INDEX jobs_running_idx ON {{schema}}.jobs (locked_by, locked_until) WHERE state = 'running';
-- A queue key is held from enqueue until the job leaves the live table (finished or cancelled),
-- through retries too: the uniqueness is the hold.
CREATE UNIQUE INDEX jobs_queue_key_idx ON {{schema}}.jobs (partition, queue_key) WHERE queue_key IS NOT NULL;
CREATE INDEX jobs_execution_key_idx ON {{schema}}.jobs (partition, execution_key, created_at) WHERE execution_key IS NOT NULL;
CREATE INDEX jobs_lookup_idx ON {{schema}}.jobs USING gin (lookup_index jsonb_path_ops) WHERE lookup_index IS NOT NULL;

-- Finished jobs, partitioned by day of finishing: retention drops whole partitions.
CREATE TABLE {{schema}}.jobs_history (
  id              uuid NOT NULL,
  partition       text NOT NULL,
  queue           text NOT NULL,
  type            text NOT NULL,
  payload         jsonb NOT NULL,
  state           text NOT NULL CHECK (state IN ('completed', 'failed', 'cancelled')),
  priority        integer NOT NULL,
  run_at          timestamptz NOT NULL,
  attempts        integer NOT NULL,
  max_attempts    integer NOT NULL,
  result          jsonb,
  errors          jsonb NOT NULL,
  progress        jsonb,
  queue_key       text,
  execution_key   text,
  lookup          jsonb,
  lookup_index    jsonb,
  node            text,
  created_at      timestamptz NOT NULL,
  started_at      timestamptz,
  finished_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, finished_at)
) PARTITION BY RANGE (finished_at);

CREATE INDEX jobs_history_id_idx ON {{schema}}.jobs_history (id);
CREATE INDEX jobs_history_lookup_idx ON {{schema}}.jobs_history USING gin (lookup_index jsonb_path_ops);

-- Creates the daily partitions from yesterday to days_ahead days from now. Rows never land in a
-- missing partition because every node runs this at start and hourly, far ahead of the clock.
CREATE FUNCTION {{schema}}.ensure_history_partitions(days_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  day date;
  created integer := 0;
  part text;
BEGIN
  FOR day IN SELECT generate_series(current_date - 1, current_date + days_ahead, interval '1 day')::date LOOP
    part := 'jobs_history_' || to_char(day, 'YYYYMMDD');
    IF to_regclass(format('%I.%I', '{{schema_raw}}', part)) IS NULL THEN
      BEGIN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.jobs_history FOR VALUES FROM (%L) TO (%L)',
                       '{{schema_raw}}', part, '{{schema_raw}}', day, day + 1);
        created := created + 1;
      EXCEPTION WHEN duplicate_table THEN
        NULL; -- another node created it a moment ago
      END;
    END IF;
  END LOOP;
  RETURN created;
END
$$;

-- Partitions and queues declared by running nodes: enqueue to anything else is refused.
CREATE TABLE {{schema}}.queues (
  partition   text NOT NULL,
  queue       text NOT NULL,
  concurrency integer NOT NULL,
  node_id     text NOT NULL,
  seen_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (partition, queue, node_id)
);

CREATE TABLE {{schema}}.nodes (
  id           text PRIMARY KEY,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  info         jsonb NOT NULL DEFAULT '{}'
);

-- Retention: drops the daily partitions that ended more than keep_days ago; returns their names.
CREATE FUNCTION {{schema}}.prune_history(keep_days integer) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  part text;
BEGIN
  FOR part IN
    SELECT c.relname
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace
    WHERE n.nspname = '{{schema_raw}}' AND p.relname = 'jobs_history'
      AND c.relname ~ '^jobs_history_\d{8}$'
      AND to_date(substring(c.relname from 'jobs_history_(\d{8})$'), 'YYYYMMDD') + 1 <= current_date - keep_days
    ORDER BY c.relname
  LOOP
    EXECUTE format('DROP TABLE %I.%I', '{{schema_raw}}', part);
    RETURN NEXT part;
  END LOOP;
END
$$;

-- Defaults of the job types nodes define, so a client without the definitions enqueues a type
-- into its queue with its attempts and timeout.
CREATE TABLE {{schema}}.job_types (
  type         text PRIMARY KEY,
  queue        text NOT NULL,
  max_attempts integer NOT NULL,
  timeout_ms   integer,
  node_id      text NOT NULL,
  seen_at      timestamptz NOT NULL DEFAULT now()
);
