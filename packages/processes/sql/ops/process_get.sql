-- One process with its state. $1 name.
SELECT *, lease_expires_at > now() AS lease_live FROM {{schema}}.processes WHERE name = $1
