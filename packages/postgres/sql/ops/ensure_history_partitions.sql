SELECT {{schema}}.ensure_history_partitions($1::integer) AS created
