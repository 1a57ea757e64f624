-- Tokens for each rate-limited queue of a partition, before a claim: $2 queues (sorted, so two
-- nodes lock their buckets in one order), $3 how many each wants, $4 limits, $5 windows in ms.
-- A queue granted less than it wanted also counts its due jobs (up to what it wanted), so the
-- engine can report how many the limit holds back.
SELECT r.queue, t.granted, t.tokens_left, t.wait_ms, t.taken_at,
       CASE WHEN t.granted < r.want THEN (
         SELECT count(*) FROM (
           SELECT 1 FROM {{schema}}.jobs j
           WHERE j.partition = $1 AND j.queue = r.queue AND j.state = 'queued' AND j.run_at <= now()
           LIMIT r.want) d
       )::integer END AS due
FROM unnest($2::text[], $3::integer[], $4::integer[], $5::integer[]) WITH ORDINALITY AS r(queue, want, lim, period_ms, i)
CROSS JOIN LATERAL {{schema}}.take_rate_tokens($1, r.queue, '', r.want, r.lim, r.period_ms) t
ORDER BY r.i
