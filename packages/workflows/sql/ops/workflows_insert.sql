-- plan: generic
-- The workflows a transaction started, in one statement, each with its state after the transitions
-- that ran at once ($1-$13, a column each: arrays of one length, sent in binary, encodeColumns of @partita/postgres;
-- as one JSON array of objects its input cost more than the insert); one that finished at once is
-- stored finished (output = data).
-- All in today's partition (start_day's default, the transaction's now(), which their first records
-- take too). An id taken in another partition raises the key's unique_violation. Only the days before
-- today and the carried rows are probed for it: today's key refuses a taken id itself, and the days
-- made ahead hold no workflow yet (their partitions are pruned when the statement starts).
INSERT INTO {{schema}}.wf_workflows (id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension,
                                     parent_index, output, finished_at, expire_at)
SELECT r.id, r.app_id, r.version, r.topic, r.partition, r.status, r.data, r.search, r.parent_id, r.parent_activity, r.parent_dimension, r.parent_index,
       CASE WHEN r.status = 0 THEN r.data END,
       CASE WHEN r.status = 0 THEN now() END,
       CASE WHEN r.status = 0 AND r.expire >= 0 THEN now() + make_interval(secs => r.expire) END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::jsonb[], $8::jsonb[], $9::text[], $10::text[], $11::text[],
            $12::int[], $13::int[])
     AS r(id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension, parent_index, expire)
WHERE CASE WHEN EXISTS (SELECT 1 FROM {{schema}}.wf_workflows t WHERE t.id = r.id AND (t.start_day < (now() AT TIME ZONE 'UTC')::date OR t.start_day = 'infinity') OFFSET 0) THEN {{schema}}.wf_id_taken(r.id) ELSE true END
