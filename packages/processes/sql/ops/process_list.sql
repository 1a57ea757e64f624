-- Every process with its state, by name.
SELECT *, lease_expires_at > now() AS lease_live FROM {{schema}}.processes ORDER BY name
