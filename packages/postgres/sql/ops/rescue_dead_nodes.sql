-- Every node's rescue round: the running jobs of nodes that stopped heartbeating go back to queued
-- (rescue_locked_jobs, migration 0014, as the sweep's). No index covers running jobs
-- (migration 0014), so jobs is read only when the small nodes table shows a suspect: a node whose
-- last heartbeat is older than its lease less one heartbeat period ($2 ms for a row whose profile
-- lacks them). Until then each lease it holds was taken or renewed since with at least that much
-- left, so none has run out. One scan of jobs then reads the suspects' running jobs, and only those
-- whose own lease ended are rescued: a node that stopped heartbeating but kept claiming holds fresh
-- leases, and stays a suspect until none of its running jobs is left. Then its row goes: nothing of
-- it is left to rescue, and a node that was only slow writes it again with its next heartbeat.
-- Jobs of a node without a row (it died before its first heartbeat, a hand-off to a node that is
-- gone) and jobs a live node let go of are the sweep's (rescue_expired, the maintenance leader's).
WITH suspects AS MATERIALIZED (
  SELECT n.id FROM {{schema}}.nodes n
  WHERE n.heartbeat_at < now() - make_interval(secs => coalesce(
    (n.info->>'leaseMs')::double precision - (n.info->>'heartbeatMs')::double precision, $2::double precision) / 1000)
), held AS MATERIALIZED (
  SELECT j.id, j.locked_by, j.locked_until FROM {{schema}}.jobs j
  -- The first condition names no column of jobs: a one-time filter, so with no suspect jobs is not read.
  WHERE EXISTS (SELECT 1 FROM suspects) AND j.state = 'running' AND j.locked_by = ANY(ARRAY(SELECT id FROM suspects))
), expired AS (
  SELECT j.id FROM {{schema}}.jobs j
  WHERE j.id = ANY(ARRAY(SELECT h.id FROM held h WHERE h.locked_until < now() ORDER BY h.locked_until LIMIT 1000))
    -- Checked again on the row locked: it may have been renewed, completed or rescued meanwhile.
    AND j.state = 'running' AND j.locked_until < now()
  FOR UPDATE SKIP LOCKED
), rescued AS (
  SELECT * FROM {{schema}}.rescue_locked_jobs(ARRAY(SELECT id FROM expired), $1)
), cleared AS (
  DELETE FROM {{schema}}.nodes n
  WHERE n.id IN (SELECT id FROM suspects) AND NOT EXISTS (SELECT 1 FROM held h WHERE h.locked_by = n.id)
    -- Checked again on the row: a heartbeat that committed since this statement's snapshot keeps it.
    AND n.heartbeat_at < now() - make_interval(secs => coalesce(
      (n.info->>'leaseMs')::double precision - (n.info->>'heartbeatMs')::double precision, $2::double precision) / 1000)
)
SELECT * FROM rescued
