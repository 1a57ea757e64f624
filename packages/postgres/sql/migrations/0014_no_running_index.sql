-- A claim changes `state`, so it is never a HOT update, and it inserted an entry into every index
-- whose predicate the running row meets: jobs_pkey and this one. Its only reader was the rescue
-- scan for expired leases; rescue now starts from the small nodes table (rescue_dead_nodes: the
-- running jobs of nodes that stopped heartbeating) and a slower sweep of jobs by one node
-- (rescue_expired) catches the rest, so no claim pays for an index over running jobs.
DROP INDEX {{schema}}.jobs_running_idx;
