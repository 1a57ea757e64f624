SELECT version, name, applied_at FROM {{schema}}.migrations ORDER BY version
