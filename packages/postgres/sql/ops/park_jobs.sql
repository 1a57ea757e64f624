-- Jobs a Global refused to admit (their execution key is held) wait durably: back from running
-- to waiting, attempt not counted, lease dropped. Only the claiming node's attempt is parked.
UPDATE {{schema}}.jobs j
SET state = 'waiting', attempts = j.attempts - 1, locked_by = NULL, locked_until = NULL
FROM unnest($1::uuid[], $2::integer[], $3::text[]) AS t(id, attempt, node)
WHERE j.id = t.id AND j.attempts = t.attempt AND j.locked_by = t.node AND j.state = 'running'
RETURNING j.id
