-- Index entries no reader needs, which every workflow paid:
-- * `search` (GIN) holds only workflows started with searchable fields: an empty `search` was an entry
--   (a pending-list insert) per workflow at its insert and again at its finishing move, for a value no
--   lookup asks for (hookAll and the dashboard's field filter always name a field; their statements
--   say `search <> '{}'` so that plans can use the partial index).
-- * `expire_at` serves the row sweep only, which reads only the open partition (expired_remove): it
--   lives there alone, not in the daily partitions, where every finished workflow had an entry.
DROP INDEX {{schema}}.wf_workflows_search;
CREATE INDEX wf_workflows_search ON {{schema}}.wf_workflows USING gin (search jsonb_path_ops) WHERE search <> '{}'::jsonb;
DROP INDEX {{schema}}.wf_workflows_expire;
CREATE INDEX wf_workflows_open_expire ON {{schema}}.wf_workflows_open (expire_at) WHERE expire_at IS NOT NULL;
-- * wf_steps by workflow served only the rare readers of a workflow's steps (interrupt's cancels,
--   scrub, the sweep), yet every step wrote an entry (three per workflow of three steps): those
--   readers now go from the workflow's records, whose key starts with its id, to the steps' job ids
--   (a record holds the job id of its step while the step is linked).
DROP INDEX {{schema}}.wf_steps_workflow;
