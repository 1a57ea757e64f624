-- Live jobs by partition, queue and the state users see (metrics): one read-only GROUP BY over the
-- hot table (live jobs only, so its cost does not grow with history), plus a zero row for every
-- declared queue so empty queues read 0 instead of vanishing.
SELECT partition, queue, state, count(*)::int AS count
FROM (SELECT partition, queue, {{schema}}.shown_state(state, run_at, partition, execution_key, id) AS state
      FROM {{schema}}.jobs) live
GROUP BY 1, 2, 3
UNION ALL
SELECT DISTINCT partition, queue, 'queued', 0 FROM {{schema}}.queues
