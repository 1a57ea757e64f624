-- Background processes (@partita/processes, the Go `process` model). One row per process: its
-- settings (with a version every admin change bumps, which is how a running owner knows to merge),
-- its owner as a fenced lease (owner + epoch + expiry: a claim increments the epoch, and every
-- write of a run is made WHERE owner and epoch are still the run's), the current or last run, and
-- the stats aggregated over runs.
CREATE TABLE {{schema}}.processes (
  name                 text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
  schedule_ms          bigint NOT NULL CHECK (schedule_ms > 0),
  settings             jsonb NOT NULL DEFAULT '{}',
  settings_version     bigint NOT NULL DEFAULT 0,
  paused               boolean NOT NULL DEFAULT false,
  -- A run asked for by trigger: due while it is later than the last run's start.
  triggered_at         timestamptz,
  owner                text,
  owner_epoch          bigint NOT NULL DEFAULT 0,
  lease_expires_at     timestamptz,
  run_no               bigint NOT NULL DEFAULT 0,
  run_started_at       timestamptz,
  run_finished_at      timestamptz,
  progress_at          timestamptz,
  run_state            text CHECK (run_state IN ('active', 'completed', 'incomplete', 'aborted')),
  -- The settings version the run has merged: an admin change above it is merged at its next progress.
  run_settings_version bigint NOT NULL DEFAULT 0,
  run                  jsonb,
  aggregate            jsonb NOT NULL DEFAULT '{}',
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Work items, one row each, so an admin change does not rewrite one big blob. `list` is where the
-- item is: active (processed each run), cleanup (unregistered: cleanupWork runs for it next run),
-- dropped (cleaned up; kept for a retention, then deleted).
CREATE TABLE {{schema}}.process_work (
  process     text NOT NULL REFERENCES {{schema}}.processes (name) ON DELETE CASCADE,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 500),
  list        text NOT NULL CHECK (list IN ('active', 'cleanup', 'dropped')),
  params      jsonb NOT NULL DEFAULT 'null',
  modified_at timestamptz NOT NULL DEFAULT now(),
  listed_at   timestamptz NOT NULL DEFAULT now(),
  status      jsonb,
  PRIMARY KEY (process, name)
);

CREATE INDEX process_work_dropped ON {{schema}}.process_work (process, listed_at) WHERE list = 'dropped';
