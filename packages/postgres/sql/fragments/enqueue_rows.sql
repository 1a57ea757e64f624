-- An enqueue batch's jobs as rows, one per array position (enqueue_batch, enqueue_leased), with
-- parameters $1-$14 as enqueue_batch lists them. A NULL parameter means no job of the batch has
-- that value: ROWS FROM pads it with nulls. An op takes it as the body of its `job` CTE, written
-- `job AS NOT MATERIALIZED {{> enqueue_rows}}`, so the planner inlines it as if written out.
SELECT x.id, x.partition, x.queue, x.type, x.payload, x.priority, coalesce(x.run_at, now()) AS run_at,
       x.max_attempts, x.timeout_ms, x.queue_key, x.execution_key,
       nullif(x.lookup, 'null'::jsonb) AS lookup, nullif(x.lookup_index, 'null'::jsonb) AS lookup_index, x.continuation
FROM ROWS FROM (
  unnest($1::uuid[]), unnest($2::text[]), unnest($3::text[]), jsonb_array_elements_text($4::jsonb),
  jsonb_array_elements($5::jsonb), unnest($6::integer[]), unnest($7::timestamptz[]),
  unnest($8::integer[]), unnest($9::integer[]), jsonb_array_elements_text($10::jsonb),
  jsonb_array_elements_text($11::jsonb), jsonb_array_elements($12::jsonb), jsonb_array_elements($13::jsonb),
  jsonb_array_elements_text($14::jsonb)
) AS x(id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
       queue_key, execution_key, lookup, lookup_index, continuation)
