-- A hook() and an activity starting to wait for it serialise here, so a signal is either seen by the
-- waiting activity or kept for it, never neither. Keyed by the workflow when the topic's rules name
-- one (so waits of different workflows do not queue behind each other), else by the topic.
SELECT pg_advisory_xact_lock(hashtext('partita.wf:' || $1 || ':' || $2 || ':' || coalesce($3::text, '')))
