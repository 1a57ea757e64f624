-- plan: generic
-- The workflows a transaction started, in one statement, each with its state after the transitions
-- that ran at once ($1-$13, a column each: arrays of one length, encodeColumnsJsonArrays of
-- @partita/postgres: in binary, but the JSON ones, $7 and $8, each one JSON array whose nulls are NULLs,
-- as transition_write takes them, for the same reason: a jsonb[] is parsed element by element in the
-- bind, ~9 µs a workflow here; as one JSON array of objects its input cost more than the insert); one
-- that finished at once is stored finished (output = data).
-- All in today's partition (start_day's default, the transaction's now(), which their first records
-- take too). An id taken in another partition raises the key's unique_violation. Only the days before
-- today and the carried rows are probed for it: today's key refuses a taken id itself, and the days
-- made ahead hold no workflow yet (their partitions are pruned when the statement starts).
INSERT INTO {{schema}}.wf_workflows (id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension,
                                     parent_index, output, finished_at, expire_at)
SELECT r.id, r.app_id, r.version, r.topic, r.partition, r.status, nullif(r.data, 'null'), nullif(r.search, 'null'), r.parent_id, r.parent_activity,
       r.parent_dimension, r.parent_index,
       CASE WHEN r.status = 0 THEN nullif(r.data, 'null') END,
       CASE WHEN r.status = 0 THEN now() END,
       CASE WHEN r.status = 0 AND r.expire >= 0 THEN now() + make_interval(secs => r.expire) END
-- The columns as set-returning functions of the select list, in lockstep (as transition_write's `staged`
-- and core's enqueue_rows): a ROWS FROM put each function's output in a tuplestore of its own first.
-- Alone (bench/wf-variants.ts, 1,000 workflows a call, alternating): 12.5 -> 12.2 ms a call (median).
FROM (SELECT unnest($1::text[]) AS id, unnest($2::text[]) AS app_id, unnest($3::text[]) AS version, unnest($4::text[]) AS topic,
             unnest($5::text[]) AS partition, unnest($6::bigint[]) AS status, jsonb_array_elements($7::jsonb) AS data,
             jsonb_array_elements($8::jsonb) AS search, unnest($9::text[]) AS parent_id, unnest($10::text[]) AS parent_activity,
             unnest($11::text[]) AS parent_dimension, unnest($12::int[]) AS parent_index, unnest($13::int[]) AS expire) r
WHERE CASE WHEN EXISTS (SELECT 1 FROM {{schema}}.wf_workflows t WHERE t.id = r.id AND (t.start_day < (now() AT TIME ZONE 'UTC')::date OR t.start_day = 'infinity') OFFSET 0) THEN {{schema}}.wf_id_taken(r.id) ELSE true END
