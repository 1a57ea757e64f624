-- Fan-out awaits (an `await` with `items`: one child workflow per array element), on the
-- partitioned tables of 0003.
-- A child's position in its parent's array: its output goes to that place of the parent's `items`.
ALTER TABLE {{schema}}.wf_workflows ADD COLUMN parent_index int;
-- The fan-out activity's count of children still running: each child's end decrements it in the
-- parent's locked row, so the fan-in costs the same per child whatever the number of children, and the
-- child that brings it to 0 completes the activity (once, whatever order they end in).
ALTER TABLE {{schema}}.wf_activities ADD COLUMN children_open int;

-- Outputs of the children that ended, until the last one collects them into the activity's output.
-- Kept apart from the children's own rows, which may expire before their last sibling ends. No
-- foreign key to wf_workflows (its id is unique per partition only, see 0003): whoever removes a
-- parent removes its rows here too (the row sweep, scrub, and the partition drop below).
CREATE TABLE {{schema}}.wf_fanin (
  workflow_id text  NOT NULL,
  activity    text  NOT NULL,
  dimension   text  NOT NULL,
  idx         int   NOT NULL,
  child_id    text  NOT NULL,
  output      jsonb,
  PRIMARY KEY (workflow_id, activity, dimension, idx)
);

-- 0003's partition drop, which now also removes the fan-in outputs no workflow has any more.
CREATE OR REPLACE FUNCTION {{schema}}.prune_wf_partitions(cutoff timestamptz) RETURNS SETOF text
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
    DELETE FROM {{schema}}.wf_fanin f WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = f.workflow_id);
  END IF;
END
$$;
