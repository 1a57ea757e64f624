-- The overview's last hour rebuilt from history when a dashboard starts (its charts are otherwise
-- kept from job events, in memory): finished jobs per minute of finishing between $1 and $2, with
-- the sums behind the average wait (enqueue → start, first attempts) and run time. History is
-- partitioned by day of finishing, so the range reads only today's (and at midnight yesterday's)
-- partition, once per dashboard process, under the dashboard's statement_timeout.
SELECT (floor(extract(epoch FROM finished_at) / 60) * 60000)::float8 AS at,
       count(*) FILTER (WHERE state = 'completed')::int AS completed,
       count(*) FILTER (WHERE state = 'failed')::int AS failed,
       coalesce(sum(extract(epoch FROM started_at - created_at) * 1000)
                FILTER (WHERE attempts = 1 AND started_at IS NOT NULL AND started_at >= created_at), 0)::float8 AS wait_ms,
       count(*) FILTER (WHERE attempts = 1 AND started_at IS NOT NULL AND started_at >= created_at)::int AS waits,
       coalesce(sum(extract(epoch FROM finished_at - started_at) * 1000)
                FILTER (WHERE state <> 'cancelled' AND started_at IS NOT NULL), 0)::float8 AS run_ms,
       count(*) FILTER (WHERE state <> 'cancelled' AND started_at IS NOT NULL)::int AS runs
FROM {{schema}}.jobs_history
WHERE finished_at >= $1::timestamptz AND finished_at < $2::timestamptz
GROUP BY 1
ORDER BY 1
