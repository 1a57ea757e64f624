-- Workflows: one row per run, pinned to the app version it started on. `status` is HotMesh's
-- semaphore: -1 pending, > 0 open activities, 0 done, -1000000000 interrupted.
CREATE TABLE {{schema}}.wf_workflows (
  id               text        PRIMARY KEY,
  app_id           text        NOT NULL,
  version          text        NOT NULL,
  topic            text        NOT NULL,
  partition        text        NOT NULL,
  status           bigint      NOT NULL DEFAULT -1,
  data             jsonb       NOT NULL DEFAULT '{}',
  -- Searchable fields (`search` on pub): GIN-indexed, so `hookAll` and listings by field stay index scans.
  search           jsonb       NOT NULL DEFAULT '{}',
  output           jsonb,
  parent_id        text,
  parent_activity  text,
  parent_dimension text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz,
  -- When a finished workflow is removed (its graph's `expire`); null: kept.
  expire_at        timestamptz,
  FOREIGN KEY (app_id, version) REFERENCES {{schema}}.wf_versions (app_id, version)
);
CREATE INDEX wf_workflows_search ON {{schema}}.wf_workflows USING gin (search jsonb_path_ops);
CREATE INDEX wf_workflows_parent ON {{schema}}.wf_workflows (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX wf_workflows_expire ON {{schema}}.wf_workflows (expire_at) WHERE expire_at IS NOT NULL;
CREATE INDEX wf_workflows_app_status ON {{schema}}.wf_workflows (app_id, status);

-- One row per activity and dimension (each cycle pass has its own, so a pass never overwrites the last).
-- `entered` counts how often the executor entered it: a transition that ran twice shows as 2.
CREATE TABLE {{schema}}.wf_activities (
  workflow_id text        NOT NULL REFERENCES {{schema}}.wf_workflows (id) ON DELETE CASCADE,
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
  -- Start order within a workflow (several activities start in one transaction, at one now()).
  seq         bigint      GENERATED ALWAYS AS IDENTITY,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (workflow_id, activity, dimension)
);

-- A worker step's job → the activity it runs: the continuation finds its workflow by job id.
CREATE TABLE {{schema}}.wf_steps (
  job_id      text PRIMARY KEY,
  workflow_id text NOT NULL REFERENCES {{schema}}.wf_workflows (id) ON DELETE CASCADE,
  activity    text NOT NULL,
  dimension   text NOT NULL
);
CREATE INDEX wf_steps_workflow ON {{schema}}.wf_steps (workflow_id);

-- Hook activities waiting for `hook(topic, data)`.
CREATE TABLE {{schema}}.wf_hooks (
  app_id        text        NOT NULL,
  topic         text        NOT NULL,
  workflow_id   text        NOT NULL REFERENCES {{schema}}.wf_workflows (id) ON DELETE CASCADE,
  activity      text        NOT NULL,
  dimension     text        NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workflow_id, activity, dimension, topic)
);
CREATE INDEX wf_hooks_topic ON {{schema}}.wf_hooks (app_id, topic);

-- Signals that found no waiting activity yet: delivered when one starts waiting, dropped after expire_at.
CREATE TABLE {{schema}}.wf_signals (
  id         bigserial   PRIMARY KEY,
  app_id     text        NOT NULL,
  topic      text        NOT NULL,
  data       jsonb       NOT NULL,
  -- The workflow the hook rule names (`{$job.metadata.jid}` against the data), when it names one:
  -- a waiting activity then reads only its own signals.
  target     text,
  created_at timestamptz NOT NULL DEFAULT now(),
  expire_at  timestamptz NOT NULL
);
CREATE INDEX wf_signals_topic ON {{schema}}.wf_signals (app_id, topic, target, id);
