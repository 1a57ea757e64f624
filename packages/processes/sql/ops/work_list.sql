-- The work items of a process, by name. $1 process, $2 lists to read (e.g. {active,cleanup}).
SELECT name, list, params, modified_at, listed_at, status
FROM {{schema}}.process_work
WHERE process = $1 AND list = ANY ($2::text[])
ORDER BY name
