-- A hook() and an activity starting to wait on the same topic serialise here, so a signal is either
-- seen by the waiting activity or kept for it, never neither.
SELECT pg_advisory_xact_lock(hashtext('partita.wf:' || $1 || ':' || $2))
