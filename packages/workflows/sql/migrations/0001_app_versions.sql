-- Workflow apps: every deployed version stays loadable (a workflow runs to its end on the version it
-- started on); the active version only decides what new workflows start on.
CREATE TABLE {{schema}}.wf_versions (
  app_id      text        NOT NULL,
  version     text        NOT NULL,
  -- sha256 of the compiled app's canonical JSON: the same id+version deployed again with another hash is refused.
  hash        text        NOT NULL,
  definition  jsonb       NOT NULL,
  source      text,
  deployed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (app_id, version)
);

-- One row per app once a version was activated. Nodes cache it and re-read it after a `nocache`
-- broadcast, at start and on reconnect, so none keeps starting workflows on an old version.
CREATE TABLE {{schema}}.wf_apps (
  app_id         text        PRIMARY KEY,
  active_version text        NOT NULL,
  activated_at   timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (app_id, active_version) REFERENCES {{schema}}.wf_versions (app_id, version)
);
