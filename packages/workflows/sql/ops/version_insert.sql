-- Stores a deployed version; an existing id+version comes back with its hash (the caller compares).
WITH ins AS (
  INSERT INTO {{schema}}.wf_versions (app_id, version, hash, definition, source)
  VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (app_id, version) DO NOTHING
  RETURNING hash, true AS inserted
)
SELECT hash, inserted FROM ins
UNION ALL
SELECT hash, false FROM {{schema}}.wf_versions WHERE app_id = $1 AND version = $2 AND NOT EXISTS (SELECT 1 FROM ins)
