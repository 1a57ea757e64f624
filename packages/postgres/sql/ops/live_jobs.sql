-- Which of these jobs are still live (absent: finished or never existed), for Global's reconciliation.
SELECT id FROM {{schema}}.jobs WHERE id = ANY($1::uuid[])
