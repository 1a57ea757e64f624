import { withoutTraceContext, type JobError, type JobRecord, type JobState, type Lookup } from '@partita/core';

export interface JobRow {
  id: string;
  partition: string;
  queue: string;
  type: string;
  payload: unknown;
  state: JobState;
  priority: number;
  run_at: Date;
  attempts: number;
  max_attempts: number;
  result: unknown;
  errors: JobError[];
  progress: unknown;
  queue_key: string | null;
  execution_key: string | null;
  lookup: Lookup | null;
  node: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

export function toJobRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    partition: row.partition,
    queue: row.queue,
    type: row.type,
    payload: row.payload,
    state: row.state,
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    result: row.result ?? null,
    errors: row.errors ?? [],
    lookup: withoutTraceContext(row.lookup),
    queueKey: row.queue_key,
    executionKey: row.execution_key,
    runAt: row.run_at,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    node: row.node,
    progress: row.progress ?? null,
  };
}
