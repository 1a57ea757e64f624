-- The fence of a write made on behalf of a lease holder: run inside the writer's transaction, it
-- locks the lease row (see lease_held in migration 0011) so no take-over commits before the writer
-- does. $1 lease name, $2 epoch. held: false when the lease ran out, was released or taken over.
SELECT {{schema}}.lease_held($1, $2::bigint) AS held
