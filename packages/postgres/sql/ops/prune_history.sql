SELECT name FROM {{schema}}.prune_history($1::integer) AS name
