-- Roger's releaseQueueKey: the live job keeps running but no longer holds its queue key.
UPDATE {{schema}}.jobs SET queue_key = NULL WHERE partition = $1 AND queue_key = $2 RETURNING id
