-- Asks for a run now (whatever the slot): the next claim after this sees it due. $1 name.
UPDATE {{schema}}.processes SET triggered_at = clock_timestamp(), updated_at = now() WHERE name = $1 RETURNING triggered_at
