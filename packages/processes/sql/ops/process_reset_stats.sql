-- Clears the stats aggregated over runs. $1 name.
UPDATE {{schema}}.processes SET aggregate = '{}', updated_at = now() WHERE name = $1 RETURNING name
