-- Live state of these jobs (absent: finished or never existed), for Global's reconciliation.
SELECT id, state, execution_key, queue FROM {{schema}}.jobs WHERE id = ANY($1::uuid[])
