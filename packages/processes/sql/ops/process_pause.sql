-- Pauses or resumes a process: a paused one starts no run, and a run under way stops at its next
-- progress. $1 name, $2 paused.
UPDATE {{schema}}.processes SET paused = $2, updated_at = now() WHERE name = $1 RETURNING name
