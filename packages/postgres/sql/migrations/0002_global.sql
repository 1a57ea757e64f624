-- One Global coordinator per partition, cluster-wide: whoever holds the partition's lease runs it.
-- A lease row is never deleted, so its epoch only ever grows: every take-over increments it, and
-- every write made on behalf of a leader (Global snapshots here, any persister elsewhere) carries
-- the epoch so a write from a deposed leader can be refused. Times are the database's clock.
CREATE TABLE {{schema}}.partition_leases (
  partition    text PRIMARY KEY,
  holder       text NOT NULL,
  epoch        bigint NOT NULL CHECK (epoch >= 1),
  expires_at   timestamptz NOT NULL,
  -- When the current holder took it (unchanged by renewals and by re-acquiring a live lease).
  acquired_at  timestamptz NOT NULL DEFAULT now(),
  renewed_at   timestamptz NOT NULL DEFAULT now(),
  -- Set by a graceful release: the lease is expired at once and its holder cannot renew it back.
  released_at  timestamptz
);

-- The postgres persister: the last snapshot of each partition's Global state, with the epoch of
-- the leader that saved it. A save from an older epoch is refused in SQL.
CREATE TABLE {{schema}}.global_state (
  partition  text PRIMARY KEY,
  epoch      bigint NOT NULL CHECK (epoch >= 0),
  snapshot   jsonb NOT NULL,
  saved_at   timestamptz NOT NULL DEFAULT now()
);
