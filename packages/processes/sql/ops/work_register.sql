-- Registers a work item: new, or moved back from cleanup or dropped, or given new params (its status
-- starts over). No row back when it was already active with equal params (nothing changed).
-- $1 process, $2 name, $3 params.
INSERT INTO {{schema}}.process_work AS w (process, name, list, params)
VALUES ($1, $2, 'active', $3)
ON CONFLICT (process, name) DO UPDATE SET
  list = 'active',
  params = excluded.params,
  modified_at = now(),
  listed_at = CASE WHEN w.list = 'active' THEN w.listed_at ELSE now() END,
  status = NULL
WHERE w.list <> 'active' OR w.params IS DISTINCT FROM excluded.params
RETURNING name
