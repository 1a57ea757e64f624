-- Items cleaned up by a run move to dropped, unless registered again meanwhile. $1 process, $2 names.
UPDATE {{schema}}.process_work
SET list = 'dropped', listed_at = now()
WHERE process = $1 AND name = ANY ($2::text[]) AND list = 'cleanup'
