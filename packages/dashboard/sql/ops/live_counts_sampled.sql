-- Live jobs by partition, queue and shown state, estimated from a block sample of the hot table
-- ($1 percent of its pages) scaled to $2 rows (the maintained estimate): used above a threshold of
-- live jobs, where the exact GROUP BY would read every row for each refresh. Declared queues get a
-- zero row as in the exact count.
WITH sample AS (
  SELECT partition, queue, {{schema}}.shown_state(state, run_at, partition, execution_key, id) AS state
  FROM {{schema}}.jobs TABLESAMPLE SYSTEM ($1)
), total AS (
  SELECT greatest(count(*), 1)::float8 AS n FROM sample
)
SELECT partition, queue, state, round(count(*) * $2::float8 / (SELECT n FROM total))::int AS count
FROM sample
GROUP BY 1, 2, 3
UNION ALL
SELECT DISTINCT partition, queue, 'queued', 0 FROM {{schema}}.queues
