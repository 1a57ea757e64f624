-- A node that stops leaves the roll call at once instead of after a few missed heartbeats. Holding
-- no running job, its row goes. One that stops with jobs in hand (its grace ran out) keeps its row
-- with the heartbeat set to the distant past: out of the roll call, and a suspect of the rescue
-- rounds (rescue_dead_nodes), which rescue its jobs as their leases end and then remove the row.
-- One scan of jobs per stop, as no index covers running jobs (migration 0014).
WITH holding AS MATERIALIZED (
  SELECT EXISTS (SELECT 1 FROM {{schema}}.jobs WHERE state = 'running' AND locked_by = $1) AS yes
), gone AS (
  DELETE FROM {{schema}}.nodes WHERE id = $1 AND NOT (SELECT yes FROM holding)
)
UPDATE {{schema}}.nodes SET heartbeat_at = '-infinity' WHERE id = $1 AND (SELECT yes FROM holding)
