-- Which live jobs hold these queue keys: explains a refused enqueue.
SELECT queue_key, id FROM {{schema}}.jobs WHERE partition = $1 AND queue_key = ANY($2::text[])
