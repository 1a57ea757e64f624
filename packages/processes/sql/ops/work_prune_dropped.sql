-- Deletes dropped items kept past their retention. $1 process, $2 retention ms.
DELETE FROM {{schema}}.process_work
WHERE process = $1 AND list = 'dropped' AND listed_at < now() - make_interval(secs => $2::double precision / 1000)
