-- Gives back tokens a claim was granted and did not use (it found fewer jobs): each goes back into
-- the grant it came from, found by the grant's time ($3), so the window stays exact.
UPDATE {{schema}}.rate_buckets b
SET grant_n = ARRAY(
  SELECT CASE WHEN g.a = r.taken_at THEN greatest(0, g.n - r.unused) ELSE g.n END
  FROM unnest(b.grant_at, b.grant_n) WITH ORDINALITY AS g(a, n, i) ORDER BY g.i
)
FROM unnest($2::text[], $3::double precision[], $4::integer[]) AS r(queue, taken_at, unused)
WHERE b.partition = $1 AND b.queue = r.queue AND b.key = ''
