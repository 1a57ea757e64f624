-- How many jobs a bulk operation's filter matches, by shown state (the dry run of bulk cancel,
-- retry and delete, and the "more match" note after them). Filters as list_jobs's, each ignored
-- when null: $1 partition, $2 queue, $3 type, $4 only ids below this one, $5 only these ids, $6
-- lookup in index form, $7 shown live states (null: all; empty: no live job), $8 finished states
-- (null: all; empty: none); $9 true: leave out running jobs already asked to cancel.
SELECT state, count(*)::integer AS count FROM (
  SELECT {{schema}}.shown_state(state, run_at, partition, execution_key, id) AS state
  FROM {{schema}}.jobs
  WHERE ($7::text[] IS NULL OR cardinality($7) > 0)
    AND NOT ($9::boolean AND cancel_requested)
    AND {{> job_filter}}
  UNION ALL
  SELECT state FROM {{schema}}.jobs_history
  WHERE ($8::text[] IS NULL OR (cardinality($8) > 0 AND state = ANY($8)))
    AND {{> job_filter}}
) matching
WHERE $7::text[] IS NULL OR state = ANY($7) OR state IN ('completed', 'failed', 'cancelled')
GROUP BY state
