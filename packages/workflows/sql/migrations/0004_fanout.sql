-- Fan-out awaits (an `await` with `items`: one child workflow per array element).
-- A child's position in its parent's array: its output goes to that place of the parent's `items`.
ALTER TABLE {{schema}}.wf_workflows ADD COLUMN parent_index int;
-- The fan-out activity's count of children still running: each child's end decrements it in the
-- parent's locked row, so the fan-in costs the same per child whatever the number of children, and the
-- child that brings it to 0 completes the activity (once, whatever order they end in).
ALTER TABLE {{schema}}.wf_activities ADD COLUMN children_open int;

-- Outputs of the children that ended, until the last one collects them into the activity's output.
-- Kept apart from the children's own rows, which may expire before their last sibling ends.
CREATE TABLE {{schema}}.wf_fanin (
  workflow_id text  NOT NULL REFERENCES {{schema}}.wf_workflows (id) ON DELETE CASCADE,
  activity    text  NOT NULL,
  dimension   text  NOT NULL,
  idx         int   NOT NULL,
  child_id    text  NOT NULL,
  output      jsonb,
  PRIMARY KEY (workflow_id, activity, dimension, idx)
);
