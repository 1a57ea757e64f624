-- Jobs a Global refused to admit (their execution key is held) wait durably: back from running
-- to waiting, attempt not counted, lease dropped, and the key recorded (a node may have derived it
-- from the job's definition at claim time). Only the claiming node's attempt is parked.
UPDATE {{schema}}.jobs j
SET state = 'waiting', attempts = j.attempts - 1, locked_by = NULL, locked_until = NULL,
    execution_key = coalesce(j.execution_key, t.key)
FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::text[]) AS t(id, attempt, node, key)
WHERE j.id = t.id AND j.attempts = t.attempt AND j.locked_by = t.node AND j.state = 'running'
RETURNING j.id
