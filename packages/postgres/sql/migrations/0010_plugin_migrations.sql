-- Node plugins number their migrations in folders of their own and record them here too: a version
-- is unique per plugin, and the core's rows keep '' as theirs.
ALTER TABLE {{schema}}.migrations ADD COLUMN plugin text NOT NULL DEFAULT '';
ALTER TABLE {{schema}}.migrations DROP CONSTRAINT migrations_pkey;
ALTER TABLE {{schema}}.migrations ADD PRIMARY KEY (plugin, version);
