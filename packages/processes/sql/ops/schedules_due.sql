-- Schedules due by the database's clock (plus $1 ms, the leader's tolerance for waking early), and
-- the earliest fire time of the others: the leader fires the first and sleeps until the second.
SELECT id, next_fire_at, clock_timestamp() AS db_now,
       next_fire_at <= clock_timestamp() + make_interval(secs => $1::double precision / 1000) AS due
FROM {{schema}}.schedules
WHERE NOT paused AND next_fire_at IS NOT NULL
ORDER BY next_fire_at
LIMIT $2
