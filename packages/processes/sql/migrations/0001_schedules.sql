-- Cron schedules (@partita/processes). One row per schedule; `accounted_until` is the cursor of the
-- leader's walk: every occurrence at or before it was either fired or counted as missed, so a new
-- leader (or the same one after a restart) picks up exactly where the last one stopped.
CREATE TABLE {{schema}}.schedules (
  id              text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  cron            text NOT NULL,
  timezone        text NOT NULL DEFAULT 'UTC',
  partition       text NOT NULL,
  queue           text,
  type            text NOT NULL,
  payload         jsonb NOT NULL DEFAULT 'null',
  misfire         text NOT NULL DEFAULT 'runOnce' CHECK (misfire IN ('skip', 'runOnce', 'backfill')),
  backfill_ms     bigint NOT NULL DEFAULT 86400000 CHECK (backfill_ms >= 0),
  overlap         text NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'allow')),
  paused          boolean NOT NULL DEFAULT false,
  -- 'declared' rows come from a node's config or jobs module and are re-synced at each start; 'api' rows only change through schedules(client).
  source          text NOT NULL DEFAULT 'api' CHECK (source IN ('declared', 'api')),
  accounted_until timestamptz NOT NULL DEFAULT now(),
  next_fire_at    timestamptz,
  last_fire_at    timestamptz,
  last_job_id     uuid,
  fired_count     bigint NOT NULL DEFAULT 0,
  missed_count    bigint NOT NULL DEFAULT 0,
  overlap_skipped bigint NOT NULL DEFAULT 0,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The leader sleeps until the smallest next_fire_at of the schedules that run.
CREATE INDEX schedules_next_fire ON {{schema}}.schedules (next_fire_at) WHERE NOT paused;

-- One row per fired occurrence: the primary key is what makes an occurrence fire once, whatever
-- the number of nodes, leader changes or clock skew; it is inserted in the transaction that
-- enqueues the occurrence's job. `manual` marks runs asked for by trigger.
CREATE TABLE {{schema}}.schedule_occurrences (
  schedule_id text NOT NULL REFERENCES {{schema}}.schedules (id) ON DELETE CASCADE,
  fire_at     timestamptz NOT NULL,
  job_id      uuid,
  outcome     text NOT NULL CHECK (outcome IN ('enqueued', 'overlap', 'refused')),
  manual      boolean NOT NULL DEFAULT false,
  claimed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schedule_id, fire_at)
);

-- Pruning by age (the leader keeps a few days).
CREATE INDEX schedule_occurrences_claimed ON {{schema}}.schedule_occurrences (claimed_at);
