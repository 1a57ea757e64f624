SELECT type, queue, max_attempts, timeout_ms, queue_key, execution_key FROM {{schema}}.job_types
