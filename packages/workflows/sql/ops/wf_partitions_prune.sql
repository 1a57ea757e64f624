-- The days dropped, of those whose whole range has passed $1 (null: now; tests pass a later time).
SELECT day FROM {{schema}}.prune_wf_partitions(coalesce($1::timestamptz, now())) AS day
