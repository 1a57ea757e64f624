import { FINISHED_JOB_STATES, LIVE_JOB_STATES, ValidationError, isUuid, type JobRecord } from '@partita/core';
import type { StoreContext } from '../context.js';
import * as op from '../ops.js';
import type { MatchParams } from '../ops.js';
import { lookupValue } from '../lookup.js';
import { toJobRecord } from '../rows.js';
import type { JobMatch } from './bulk.js';

// Reads of jobs, live and finished.

/** What JobStore.listJobs shows; every field left out matches everything. */
export interface JobListFilter {
  partition?: string;
  queue?: string;
  type?: string;
  /** Any of these states (none given: all). */
  states?: readonly JobRecord['state'][];
  /** Every key must match; an array: the job's values for the key must include each. */
  lookup?: Record<string, string | number | readonly (string | number)[]>;
  /** Only jobs with ids below this one (the previous page's last id). */
  before?: string;
  /** Only these ids. */
  ids?: readonly string[];
  limit: number;
}

export async function getJob(ctx: StoreContext, id: string): Promise<JobRecord | undefined> {
  if (!isUuid(id)) return undefined;
  const [row] = await op.getJob(ctx.ops, ctx.pool, [id]);
  return row ? toJobRecord(row) : undefined;
}

export async function jobsByKey(
  ctx: StoreContext,
  partition: string,
  key: string,
  value: string | number,
  limit = 1000,
): Promise<JobRecord[]> {
  const rows = await op.jobsByKey(ctx.ops, ctx.pool, [partition, key, lookupValue(value), limit]);
  return rows.map(toJobRecord);
}

/** Jobs live and finished, newest first (ids are UUIDv7), filtered (see sql/ops/list_jobs.sql). */
export async function listJobs(ctx: StoreContext, filter: JobListFilter): Promise<JobRecord[]> {
  if (!Number.isSafeInteger(filter.limit) || filter.limit < 0) throw new ValidationError('must be a whole number ≥ 0', 'limit');
  const states = filter.states?.length ? new Set<string>(filter.states) : undefined;
  // null: no filter on that side; [] (asked only for states of the other side): that side is not read.
  const only = (all: readonly string[]) => {
    const wanted = states ? all.filter((s) => states.has(s)) : all;
    return wanted.length === all.length ? null : wanted;
  };
  // Unnamed, unlike the other operations (see ops.listJobs): planned with each call's values, so the
  // filters left out fold away (a prepared generic plan would keep them all and could not skip history).
  const rows = await op.listJobs(ctx.ops, ctx.pool, [
    ...matchParams(filter),
    only(LIVE_JOB_STATES),
    only(FINISHED_JOB_STATES),
    filter.limit,
  ]);
  return rows.map(toJobRecord);
}

/** Which of these jobs are still live (a missing id is finished, or never existed). */
export async function liveJobs(ctx: StoreContext, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  return new Set((await op.liveJobs(ctx.ops, ctx.pool, [ids])).map((r) => r.id));
}

/** Live jobs by partition, queue and shown state, with a zero row for every declared queue (for metrics). */
export async function liveJobCounts(ctx: StoreContext): Promise<{ partition: string; queue: string; state: string; count: number }[]> {
  return op.liveJobCounts(ctx.ops, ctx.pool, []);
}

/** Due and scheduled jobs per queue of these partitions, cluster-wide (a node's roll-call answer). */
export async function queuedJobCounts(
  ctx: StoreContext,
  partitions: string[],
): Promise<{ partition: string; queue: string; queued: number; scheduled: number }[]> {
  return op.queuedJobCounts(ctx.ops, ctx.pool, [partitions]);
}

/** The filter parameters list_jobs and the bulk operations share ($1-$6): partition, queue, type, before, ids, lookup. */
export function matchParams(match: JobMatch): MatchParams {
  let lookup: Record<string, string[]> | null = null;
  for (const [key, value] of Object.entries(match.lookup ?? {}))
    (lookup ??= {})[key] = (Array.isArray(value) ? value : [value]).map(String);
  return [
    match.partition ?? null,
    match.queue ?? null,
    match.type ?? null,
    match.before ?? null,
    match.ids ?? null,
    lookup && JSON.stringify(lookup),
  ];
}

/** The job each declared queue's next claim takes, and when it became due (see sql/ops/queue_heads.sql). */
export async function queueHeads(ctx: StoreContext): Promise<{ partition: string; queue: string; id: string; dueAt: Date }[]> {
  const rows = await op.queueHeads(ctx.ops, ctx.pool, []);
  return rows.map((r) => ({ partition: r.partition, queue: r.queue, id: r.id, dueAt: r.run_at }));
}
