-- partition_control becomes where pause and throttle changes are made, not only where Global
-- publishes them: a client without the bus changes a row in one statement, as Global does, so
-- neither can overwrite the other's change. `version` counts the changes of a row, so a reader
-- that sees two states out of order keeps the later one.
ALTER TABLE {{schema}}.partition_control ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- Roll call without the bus reads the nodes seen within a few heartbeats.
CREATE INDEX nodes_heartbeat_idx ON {{schema}}.nodes (heartbeat_at);
