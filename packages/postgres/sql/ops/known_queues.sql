SELECT DISTINCT partition, queue FROM {{schema}}.queues
