SELECT type, queue, max_attempts, timeout_ms FROM {{schema}}.job_types
