-- The database's clock: next fire times are computed against it, never against a node's.
SELECT clock_timestamp() AS now
