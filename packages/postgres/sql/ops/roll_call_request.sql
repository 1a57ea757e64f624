-- Roll call without the bus: asks the nodes listening on the schema's channel to store their
-- profiles now, and returns when it asked (the database's clock, as heartbeat_at is).
-- $1 channel, $2 payload.
SELECT clock_timestamp() AS asked_at, pg_notify($1, $2)
