-- Drops buckets whose every grant has left its window (a minute's margin for clocks), so a limit
-- per key (one bucket per customer, say) keeps only the keys active lately. Answers how many.
WITH dropped AS (
  DELETE FROM {{schema}}.rate_buckets
  WHERE updated_at < now() - make_interval(secs => period_ms::double precision / 1000) - interval '1 minute'
  RETURNING 1
)
SELECT count(*)::integer AS dropped FROM dropped
