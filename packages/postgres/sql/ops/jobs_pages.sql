-- The pages of the live jobs table, dead tuples' included: what a sequential scan of it reads (the
-- sweep for expired leases, rescue_expired), to set the sweep's cadence. Read from the file's
-- size, not from statistics that may be old.
SELECT (pg_relation_size('{{schema}}.jobs'::regclass) / current_setting('block_size')::bigint)::float8 AS pages
