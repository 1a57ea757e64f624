-- Links step jobs to the activities they run, one row per job, in one statement.
INSERT INTO {{schema}}.wf_steps (job_id, workflow_id, activity, dimension)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
