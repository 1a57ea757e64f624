-- The pause and throttle state of each partition as its Global last published it. Global's
-- snapshot is the source of truth; this copy lets every node (and a node just starting, or one cut
-- off from the bus) obey pauses and throttles without asking the leader.
CREATE TABLE {{schema}}.partition_control (
  partition  text PRIMARY KEY,
  paused     text[] NOT NULL DEFAULT '{}',
  throttles  jsonb NOT NULL DEFAULT '[]',
  epoch      bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
