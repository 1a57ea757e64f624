-- Indexes that only the open partition's readers use move to that partition, so that rows in the
-- daily partitions (every finished workflow, written once by its finishing move) pay no entry in them:
-- * `search` serves `hookAll` (hooks_by_search), whose workflows wait on a hook, so are open; listings
--   compare fields with ->> and never used it. Only workflows started with searchable fields get an
--   entry: an empty `search` was a GIN entry (and a pending-list insert) per workflow and per move,
--   two per finished workflow, for a value no lookup asks for (hookAll always names a field).
-- * `expire_at` serves the row sweep, which reads only the open partition (expired_remove).
DROP INDEX {{schema}}.wf_workflows_search;
CREATE INDEX wf_workflows_open_search ON {{schema}}.wf_workflows_open USING gin (search jsonb_path_ops) WHERE search <> '{}'::jsonb;
DROP INDEX {{schema}}.wf_workflows_expire;
CREATE INDEX wf_workflows_open_expire ON {{schema}}.wf_workflows_open (expire_at) WHERE expire_at IS NOT NULL;
-- * wf_steps by workflow served only the rare readers of a workflow's steps (interrupt's cancels,
--   scrub, the sweep), yet every step wrote an entry (three per workflow of three steps): those
--   readers now go from the workflow's records, whose key starts with its id, to the steps' job ids
--   (a record holds the job id of its step while the step is linked).
DROP INDEX {{schema}}.wf_steps_workflow;
