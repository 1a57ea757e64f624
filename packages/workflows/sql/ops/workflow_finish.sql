-- A workflow that failed or interrupted itself: its output says why; kept until its expire like any
-- finished one (its row and records stay where they are: their partition is their start day's).
UPDATE {{schema}}.wf_workflows
SET output = $2, finished_at = now(), expire_at = CASE WHEN $3::int >= 0 THEN now() + make_interval(secs => $3::int) END
WHERE id = $1
