-- The core's migrations as applied to this schema (plugins' rows carry their own name in `plugin`).
SELECT version, name, applied_at FROM {{schema}}.migrations WHERE plugin = '' ORDER BY version
