-- Moves a work item to cleanup (cleanupWork runs for it in the next run). A name that was never
-- registered goes to cleanup too (so a run cleans up what it may have left). No row back when it is
-- already on cleanup or dropped. $1 process, $2 name.
INSERT INTO {{schema}}.process_work AS w (process, name, list)
VALUES ($1, $2, 'cleanup')
ON CONFLICT (process, name) DO UPDATE SET list = 'cleanup', listed_at = now(), modified_at = now()
WHERE w.list = 'active'
RETURNING name
