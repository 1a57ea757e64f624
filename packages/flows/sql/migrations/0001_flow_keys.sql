-- Lookup attributes of flow jobs: one row per (key, value) of a job, an array attribute one row per
-- element. A flow job is a workflow: its rows go with its wf_workflows row (ON DELETE CASCADE), so a
-- lookup keeps working until the workflow's retention removes it, and never outlives it.
CREATE TABLE {{schema}}.flow_keys (
  flow       text        NOT NULL,
  key        text        NOT NULL,
  value      text        NOT NULL,
  job_id     text        NOT NULL REFERENCES {{schema}}.wf_workflows (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (flow, key, value, job_id)
);
-- getJobsByKey reads newest first: an index range scan in that order, whatever the table's size.
CREATE INDEX flow_keys_lookup ON {{schema}}.flow_keys (flow, key, value, created_at DESC, job_id DESC);
-- The cascade from wf_workflows finds a job's rows by this index.
CREATE INDEX flow_keys_job ON {{schema}}.flow_keys (job_id);
