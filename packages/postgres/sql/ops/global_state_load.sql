-- $1 partition.
SELECT epoch, snapshot, saved_at FROM {{schema}}.global_state WHERE partition = $1
