-- A workflow's finishing write updated its row in place but not HOT (issue 18): `status` was a key
-- column of wf_workflows_app_status, and `status` and `expire_at` were in wf_workflows_sweep's key and
-- predicate, so the update that sets the final status and the expiry wrote a new entry into the
-- primary key and the status index (2 index entries, ~170 B of WAL a workflow, and index pages that
-- grow with every finish). No index of a day's rows now reads a column the finish changes (status,
-- data, output, finished_at, expire_at), so with the room fillfactor 50 leaves on the page it is HOT.
--
-- * Listings (workflows_list, the dashboard's page) read an app's workflows newest first: by app and
--   creation time, which never change, and which give them their order too (the status index gave
--   neither: its rows were sorted again).
-- * The row sweep's two kinds get an index each: pending workflows by `pending_until` (their expiry
--   while pending; set by workflow_insert_pending, cleared when resumed), in every partition, which
--   only pending workflows have an entry in; carried rows by expire_at, in the carried partition only
--   (a row there is rarely written).
ALTER TABLE {{schema}}.wf_workflows ADD COLUMN pending_until timestamptz;
UPDATE {{schema}}.wf_workflows SET pending_until = expire_at WHERE status = -1 AND expire_at IS NOT NULL;
DROP INDEX {{schema}}.wf_workflows_app_status;
DROP INDEX {{schema}}.wf_workflows_sweep;
CREATE INDEX wf_workflows_app_created ON {{schema}}.wf_workflows (app_id, created_at);
CREATE INDEX wf_workflows_pending ON {{schema}}.wf_workflows (pending_until) WHERE pending_until IS NOT NULL;
CREATE INDEX wf_workflows_carried_expire ON {{schema}}.wf_workflows_carried (expire_at) WHERE expire_at IS NOT NULL;
