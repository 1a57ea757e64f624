-- Room on the pages of the open partitions, so that a transition's updates stay HOT: a step's
-- transition rewrites its workflow's row (data, and a semaphore that keeps its value from one step
-- to the next) and the record the step finished, and none of those columns is indexed. On full
-- pages every such update writes a new entry into each index of the table (five on wf_workflows, the
-- search GIN among them); with room on the page it writes none. Both partitions hold only what is
-- running (a finished workflow moves to its day's partition with its records), so the room costs
-- little. Pages already written keep their fill until they are rewritten; new ones get the room.
ALTER TABLE {{schema}}.wf_workflows_open SET (fillfactor = 50);
ALTER TABLE {{schema}}.wf_activities_open SET (fillfactor = 50);
