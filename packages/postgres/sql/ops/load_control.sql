SELECT paused, throttles FROM {{schema}}.partition_control WHERE partition = $1
