-- The job filter the listing and the bulk operations share (list_jobs, count_matching,
-- cancel_matching, delete_matching), over either table, jobs or jobs_history: each term is
-- ignored when its parameter is null. $1 partition, $2 queue, $3 type, $4 only ids below this
-- one (the previous page's last), $5 only these ids, $6 lookup in index form ({key: [values]}:
-- the job's value list must contain each). An op that includes it numbers these parameters so.
($1::text IS NULL OR partition = $1)
AND ($2::text IS NULL OR queue = $2)
AND ($3::text IS NULL OR type = $3)
AND ($4::uuid IS NULL OR id < $4)
AND ($5::uuid[] IS NULL OR id = ANY($5))
AND ($6::jsonb IS NULL OR lookup_index @> $6)
