-- How many live jobs the hot table holds, from Postgres's own maintained statistics (the cumulative
-- statistics' live-tuple counter, else the planner's reltuples): no scan of the table.
SELECT greatest(coalesce(s.n_live_tup, 0), c.reltuples, 0)::float8 AS live
FROM pg_class c
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE c.oid = '{{schema}}.jobs'::regclass
