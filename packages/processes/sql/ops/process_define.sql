-- A node declares a process: created with its defaults the first time, left as stored afterwards
-- (the stored schedule and settings are authoritative for every node). $1 name, $2 schedule ms, $3 settings.
INSERT INTO {{schema}}.processes (name, schedule_ms, settings)
VALUES ($1, $2, $3)
ON CONFLICT (name) DO NOTHING
