SELECT {{schema}}.ensure_wf_partitions($1) AS created
