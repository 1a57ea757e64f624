-- An enqueue batch's jobs as rows, one per array position (enqueue_batch, enqueue_leased), with
-- parameters $1-$14 as enqueue_batch lists them. A NULL parameter means no job of the batch has
-- that value: its column is NULL in every row. An op takes it as the body of its `job` CTE, written
-- `job AS NOT MATERIALIZED {{> enqueue_rows}}`, so the planner inlines it as if written out.
-- The columns are set-returning functions of the select list, run in lockstep (a shorter one, or a
-- NULL parameter's, padded with NULLs, as ROWS FROM pads them): a value per call, where a ROWS FROM
-- put each function's whole output in a tuplestore of its own first, 14 per statement, a minimal
-- tuple a row each (transition_write's `staged` made the same move). enqueue_leased alone
-- (bench/wf-variants.ts, 1,000 jobs a call, alternating): 12.1-12.9 -> 11.2 ms a call (medians).
SELECT x.id, x.partition, x.queue, x.type, x.payload, x.priority, coalesce(x.run_at, now()) AS run_at,
       x.max_attempts, x.timeout_ms, x.queue_key, x.execution_key,
       nullif(x.lookup, 'null'::jsonb) AS lookup, nullif(x.lookup_index, 'null'::jsonb) AS lookup_index, x.continuation
FROM (
  SELECT unnest($1::uuid[]) AS id, unnest($2::text[]) AS partition, unnest($3::text[]) AS queue, jsonb_array_elements_text($4::jsonb) AS type,
         jsonb_array_elements($5::jsonb) AS payload, unnest($6::integer[]) AS priority, unnest($7::timestamptz[]) AS run_at,
         unnest($8::integer[]) AS max_attempts, unnest($9::integer[]) AS timeout_ms, jsonb_array_elements_text($10::jsonb) AS queue_key,
         jsonb_array_elements_text($11::jsonb) AS execution_key, jsonb_array_elements($12::jsonb) AS lookup,
         jsonb_array_elements($13::jsonb) AS lookup_index, jsonb_array_elements_text($14::jsonb) AS continuation
) x
