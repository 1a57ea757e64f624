-- The newest epoch known for a partition (saved state or lease), to explain a refused save. $1 partition.
SELECT greatest(
  (SELECT epoch FROM {{schema}}.global_state WHERE partition = $1),
  (SELECT epoch FROM {{schema}}.leases WHERE name = 'global:' || $1)
) AS epoch
