import { toJobRecord } from '@partita/postgres';
/**
 * The read-only job listing behind `partita jobs`: live jobs and history, filtered by partition,
 * queue, type, state and lookup keys, newest first. Ids are UUIDv7 (time-ordered), so ORDER BY id
 * DESC walks the primary keys of both tables backwards and stops at the limit; the lookup filter
 * uses the GIN indexes of both tables. History is only read when a finished state can match.
 *
 * (Written here rather than as a JobStore operation because it is an admin listing; it belongs in
 * @partita/postgres as sql/ops/list_jobs.sql once the client grows a `jobs(filter)` method.)
 */
import type { JobRecord, JobState } from '@partita/core';

export const LIVE_STATES = ['queued', 'scheduled', 'waiting', 'running'] as const;
export const FINISHED_STATES = ['completed', 'failed', 'cancelled'] as const;
export const ALL_STATES: readonly JobState[] = [...LIVE_STATES, ...FINISHED_STATES];

export interface JobFilter {
  partition?: string;
  queue?: string;
  type?: string;
  states?: JobState[];
  /** Every key must match (a value array: the job's value list must contain each). */
  lookup?: Record<string, string | string[]>;
  /** Only jobs with ids below this one (the previous page's last id). */
  before?: string;
  /** Only these ids. */
  ids?: string[];
  limit: number;
}

export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function listQuery(schema: string, filter: JobFilter): { text: string; values: unknown[] } {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`"${schema}" is not a usable schema name`);
  const s = `"${schema}"`;
  const values: unknown[] = [];
  const param = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const common: string[] = [];
  if (filter.partition !== undefined) common.push(`partition = ${param(filter.partition)}`);
  if (filter.queue !== undefined) common.push(`queue = ${param(filter.queue)}`);
  if (filter.type !== undefined) common.push(`type = ${param(filter.type)}`);
  if (filter.before !== undefined) common.push(`id < ${param(filter.before)}::uuid`);
  if (filter.ids !== undefined) common.push(`id = ANY(${param(filter.ids)}::uuid[])`);
  if (filter.lookup && Object.keys(filter.lookup).length > 0) {
    const index: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(filter.lookup)) index[k] = Array.isArray(v) ? v : [v];
    common.push(`lookup_index @> ${param(JSON.stringify(index))}::jsonb`);
  }
  const states = filter.states?.length ? new Set(filter.states) : undefined;
  const parts: string[] = [];

  const liveStates = LIVE_STATES.filter((st) => !states || states.has(st));
  if (liveStates.length > 0) {
    const where = [...common];
    if (liveStates.length < LIVE_STATES.length) {
      const ors: string[] = [];
      if (liveStates.includes('queued')) ors.push(`(state = 'queued' AND run_at <= now())`);
      if (liveStates.includes('scheduled')) ors.push(`(state = 'queued' AND run_at > now())`);
      if (liveStates.includes('waiting')) ors.push(`state = 'waiting'`);
      if (liveStates.includes('running')) ors.push(`state = 'running'`);
      where.push(`(${ors.join(' OR ')})`);
    }
    parts.push(`(SELECT id, partition, queue, type, payload,
            CASE WHEN state = 'queued' AND run_at > now() THEN 'scheduled' ELSE state END AS state,
            priority, run_at, attempts, max_attempts, NULL::jsonb AS result, errors, progress, queue_key,
            execution_key, lookup, locked_by AS node, created_at, started_at, NULL::timestamptz AS finished_at
       FROM ${s}.jobs${where.length ? ` WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id DESC LIMIT ${param(filter.limit)})`);
  }
  const finished = FINISHED_STATES.filter((st) => !states || states.has(st));
  if (finished.length > 0) {
    const where = [...common];
    if (finished.length < FINISHED_STATES.length) where.push(`state = ANY(${param(finished)}::text[])`);
    parts.push(`(SELECT id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, result, errors,
            progress, queue_key, execution_key, lookup, node, created_at, started_at, finished_at
       FROM ${s}.jobs_history${where.length ? ` WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id DESC LIMIT ${param(filter.limit)})`);
  }
  if (parts.length === 0) return { text: 'SELECT NULL WHERE false', values: [] };
  // A job is in exactly one table except during its move; DISTINCT ON keeps the live row then.
  const text = `SELECT DISTINCT ON (id) * FROM (${parts.join('\n UNION ALL \n')}) found
                 ORDER BY id DESC, finished_at NULLS FIRST LIMIT ${param(filter.limit)}`;
  return { text, values };
}

export async function listJobs(db: Queryable, schema: string, filter: JobFilter): Promise<JobRecord[]> {
  const { text, values } = listQuery(schema, filter);
  const { rows } = await db.query(text, values);
  return rows.map(toJobRecord);
}

/** Counts of jobs by state among `ids` (live and history), for progress displays. */
export async function statesOf(db: Queryable, schema: string, ids: string[]): Promise<Map<string, JobRecord>> {
  const out = new Map<string, JobRecord>();
  for (let i = 0; i < ids.length; i += 5000) {
    const chunk = ids.slice(i, i + 5000);
    for (const job of await listJobs(db, schema, { ids: chunk, limit: chunk.length })) out.set(job.id, job);
  }
  return out;
}
