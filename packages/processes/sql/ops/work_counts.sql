-- How many work items each process has on each list, for listings. No parameters.
SELECT process, list, count(*)::int AS n
FROM {{schema}}.process_work
GROUP BY process, list
