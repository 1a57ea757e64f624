-- Lookup attributes of flow jobs: one row per (key, value) of a job, an array attribute one row per
-- element. A flow job is a workflow; its rows are read through a join with wf_workflows, so a lookup
-- finds a finished job until the workflow's retention removes it, and nothing after. No foreign key:
-- workflow retention may drop whole partitions (which fires no cascade, and a partitioned
-- wf_workflows has no unique key on id alone), so the flows plugin's sweep removes the rows of
-- workflows that are gone, in bounded batches, whichever way they went.
CREATE TABLE {{schema}}.flow_keys (
  flow       text        NOT NULL,
  key        text        NOT NULL,
  value      text        NOT NULL,
  job_id     text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (flow, key, value, job_id)
);
-- getJobsByKey reads newest first: an index range scan in that order, whatever the table's size.
CREATE INDEX flow_keys_lookup ON {{schema}}.flow_keys (flow, key, value, created_at DESC, job_id DESC);
-- The sweep walks rows oldest first and removes a job's rows together.
CREATE INDEX flow_keys_created ON {{schema}}.flow_keys (created_at);
CREATE INDEX flow_keys_job ON {{schema}}.flow_keys (job_id);
