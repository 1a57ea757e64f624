-- A signal kept for a hook that is not waiting yet keeps how it answers (hook()'s status and code), so
-- that, delivered later, it routes, keeps the hook waiting (202) or fails it as it would have at once.
-- NULL: a plain success (200).
ALTER TABLE {{schema}}.wf_signals ADD COLUMN status text, ADD COLUMN code integer;
