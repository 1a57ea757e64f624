-- A job may be marked with the name of the continuation that must see its final outcome (a
-- workflow's step jobs name the workflows' transition). The writer routes a marked job through
-- that continuation's transaction; unmarked jobs of types without continuations keep the plain,
-- non-transactional write. A claim skips marked jobs whose continuation the claiming node does not
-- run, as it skips types the node does not define: their outcome must not bypass it. Null: none.
-- Not kept in history: the mark only routes the outcome of the live attempt.
ALTER TABLE {{schema}}.jobs ADD COLUMN continuation text;
