-- Forgets occurrences claimed more than $1 ms ago. Safe for exactly-once: the leader never walks
-- behind a schedule's accounted_until, and a cron or timezone change restarts the walk at now().
DELETE FROM {{schema}}.schedule_occurrences
WHERE claimed_at < now() - make_interval(secs => $1::double precision / 1000)
