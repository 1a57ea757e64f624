-- A workflow published with `pending`: status -1, nothing run; removed at expire_at unless resumed
-- first (by the row sweep, or with its day's partition). `pending_until`, its expiry while pending, is
-- what the row sweep finds it by (migration 0009). A taken id: as in workflows_insert.
INSERT INTO {{schema}}.wf_workflows (id, app_id, version, topic, partition, status, data, search, expire_at, pending_until)
SELECT $1, $2, $3, $4, $5, -1, '{}', $6, now() + make_interval(secs => $7::double precision), now() + make_interval(secs => $7::double precision)
WHERE CASE WHEN EXISTS (SELECT 1 FROM {{schema}}.wf_workflows t WHERE t.id = $1 AND (t.start_day < (now() AT TIME ZONE 'UTC')::date OR t.start_day = 'infinity')) THEN {{schema}}.wf_id_taken($1) ELSE true END
