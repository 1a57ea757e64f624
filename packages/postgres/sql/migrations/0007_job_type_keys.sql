-- Keys declared as data on a job type ('invoice:{invoice}'), registered by the nodes that define
-- it, so every enqueuer (the CLI, a client without the definitions) derives the same keys from the
-- payload. NULL: the type has no such key, or declares it as a function only its own clients call.
ALTER TABLE {{schema}}.job_types ADD COLUMN queue_key text, ADD COLUMN execution_key text;
