-- Rate limits: at most `limit` jobs of a queue (or of one key of a queue) start in any window of
-- `period_ms`, over every node. Each bucket keeps a log of its grants within the window (when, how
-- many), so the limit is a true sliding window, not a fixed one that lets twice the limit through
-- around a window's edge. The buckets live here rather than in Global's memory: a grant commits
-- with the database's clock, survives a Global leader change, and needs no NATS or leader round trip.
CREATE TABLE {{schema}}.rate_buckets (
  partition  text NOT NULL,
  queue      text NOT NULL,
  -- '' for the queue's own bucket; a per-key limit's value otherwise.
  key        text NOT NULL,
  -- Grants still inside the window: epoch milliseconds (database clock) and tokens, oldest first.
  grant_at   double precision[] NOT NULL DEFAULT '{}',
  grant_n    integer[] NOT NULL DEFAULT '{}',
  -- Set while the bucket is full: when its oldest grant leaves the window (epoch ms). Claims read
  -- only the full buckets of a queue (this index), however many keys it has.
  full_until double precision,
  -- The limit as last applied, for whoever reads this table; each claim passes the limit it obeys.
  lim        integer NOT NULL,
  period_ms  integer NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (partition, queue, key)
);
CREATE INDEX rate_buckets_full_idx ON {{schema}}.rate_buckets (partition, queue, full_until) WHERE full_until IS NOT NULL;

-- Takes up to `want` tokens from a bucket; answers what it granted, what is left, and (when none
-- is left) how long until the oldest grant leaves the window. Wanting none touches nothing.
-- VOLATILE, so each statement in it reads afresh: called inside a claim, it still sees the grants
-- of claims that committed after the claim began, once it holds the row lock, and two takers
-- never both spend one token.
CREATE FUNCTION {{schema}}.take_rate_tokens(p_partition text, p_queue text, p_key text, p_want integer, p_limit integer, p_period_ms integer,
                                            OUT granted integer, OUT tokens_left integer, OUT wait_ms double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  b {{schema}}.rate_buckets%ROWTYPE;
  now_ms double precision;
  used integer;
  oldest double precision;
BEGIN
  IF p_want <= 0 THEN
    -- Nothing to start: the bucket is neither read nor locked (tokens_left stays NULL).
    granted := 0;
    wait_ms := 0;
    RETURN;
  END IF;
  -- Again if the row went between the two (prune_rate_buckets drops idle buckets): a grant must
  -- land in a row, or the next taker would not count it.
  LOOP
    INSERT INTO {{schema}}.rate_buckets (partition, queue, key, lim, period_ms)
    VALUES (p_partition, p_queue, p_key, p_limit, p_period_ms)
    ON CONFLICT DO NOTHING;
    SELECT * INTO b FROM {{schema}}.rate_buckets
    WHERE partition = p_partition AND queue = p_queue AND key = p_key FOR UPDATE;
    EXIT WHEN FOUND;
  END LOOP;
  -- Read after the lock: the window is measured from when this grant is actually made.
  now_ms := extract(epoch FROM clock_timestamp()) * 1000;
  SELECT coalesce(array_agg(a ORDER BY i), '{}'), coalesce(array_agg(n ORDER BY i), '{}'), coalesce(sum(n), 0), min(a)
  INTO b.grant_at, b.grant_n, used, oldest
  FROM unnest(b.grant_at, b.grant_n) WITH ORDINALITY AS g(a, n, i)
  WHERE a > now_ms - p_period_ms AND n > 0;
  granted := greatest(0, least(p_want, p_limit - used));
  tokens_left := greatest(0, p_limit - used - granted);
  IF granted > 0 THEN
    b.grant_at := b.grant_at || now_ms;
    b.grant_n := b.grant_n || granted;
    oldest := coalesce(oldest, now_ms);
  END IF;
  wait_ms := CASE WHEN tokens_left > 0 OR oldest IS NULL THEN 0 ELSE greatest(0, oldest + p_period_ms - now_ms) END;
  UPDATE {{schema}}.rate_buckets
  SET grant_at = b.grant_at, grant_n = b.grant_n, lim = p_limit, period_ms = p_period_ms, updated_at = now(),
      full_until = CASE WHEN tokens_left = 0 THEN now_ms + wait_ms END
  WHERE partition = p_partition AND queue = p_queue AND key = p_key;
END
$$;
