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

-- The ids and keys the hot path compares are compared byte-wise (collation "C"), not by the database's
-- locale: under any other collation each comparison of two texts went through strcoll (its inputs
-- copied to terminate them first), and a step's statements compare them in every key probe and index
-- insert (the records' key and job index, the workflows' key: ~25 B-tree descents a workflow) and in
-- the sorts of steps_lock and steps_take. Measured on a C.UTF-8 database (its texts sort the same as
-- in "C"): a probe of a 200,000-id text key 11-12 -> 7-8 µs, an insert with its key 12.5 -> 7.4 µs.
-- The ids are opaque (uuids, or a caller's ids, compared for equality and ordered only so that
-- lockers take locks in one order), so their order need not follow a locale; every statement that
-- locks several workflows orders them by these columns, so they still agree. The other tables joined
-- to these by id take the same collation, so that each side's index still serves such a join (a
-- comparison of a "C" column with a default one is made in "C", which a default-collation index
-- cannot answer). The tables' heaps are not rewritten; their indexes on these columns are rebuilt.
ALTER TABLE {{schema}}.wf_workflows ALTER COLUMN id TYPE text COLLATE "C", ALTER COLUMN parent_id TYPE text COLLATE "C";
ALTER TABLE {{schema}}.wf_activities ALTER COLUMN workflow_id TYPE text COLLATE "C", ALTER COLUMN activity TYPE text COLLATE "C",
  ALTER COLUMN dimension TYPE text COLLATE "C", ALTER COLUMN job_id TYPE text COLLATE "C";
ALTER TABLE {{schema}}.wf_hooks ALTER COLUMN workflow_id TYPE text COLLATE "C", ALTER COLUMN activity TYPE text COLLATE "C",
  ALTER COLUMN dimension TYPE text COLLATE "C";
ALTER TABLE {{schema}}.wf_fanin ALTER COLUMN workflow_id TYPE text COLLATE "C", ALTER COLUMN activity TYPE text COLLATE "C",
  ALTER COLUMN dimension TYPE text COLLATE "C", ALTER COLUMN child_id TYPE text COLLATE "C";

-- A workflow's app version is not checked by a foreign key any more: every insert fired the key's
-- trigger (a lookup of the version's row and a KEY SHARE lock on it, 3.0 of 6.2 ms for 500 inserts,
-- ~6 µs a workflow, half of the insert), and all the transactions starting workflows of one version
-- lock that same row, which makes a new MultiXact of its lockers for each. Nothing removes a version
-- (every deployed version stays loadable) and the executor starts a workflow only on a version it
-- read from wf_versions, so the key guarded against nothing that can happen.
DO $$
DECLARE
  c text;
BEGIN
  FOR c IN
    SELECT conname FROM pg_constraint
    WHERE conrelid = '{{schema}}.wf_workflows'::regclass AND contype = 'f' AND confrelid = '{{schema}}.wf_versions'::regclass
  LOOP
    EXECUTE format('ALTER TABLE {{schema}}.wf_workflows DROP CONSTRAINT %I', c);
  END LOOP;
END
$$;
