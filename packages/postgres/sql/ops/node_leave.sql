-- A node that stops leaves the roll call at once instead of after a few missed heartbeats.
DELETE FROM {{schema}}.nodes WHERE id = $1
