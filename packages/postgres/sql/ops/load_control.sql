SELECT paused, throttles, version FROM {{schema}}.partition_control WHERE partition = $1
