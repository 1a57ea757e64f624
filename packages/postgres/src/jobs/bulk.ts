import { FINISHED_JOB_STATES, LIVE_JOB_STATES, ValidationError, type JobRecord } from '@partita/core';
import type { StoreContext } from '../context.js';
import * as op from '../ops.js';
import { matchParams, type JobListFilter } from './reads.js';
import { settleKeys } from './keys.js';

// Cancel by id, and the bulk operations (retry, cancel, delete, count) over list_jobs's filter.
// The bulk ones run unnamed, as listJobs does (ops.ts declares them so): planned with each call's
// values, so the filters left out fold away.

export interface CancelOutcome {
  id: string;
  partition: string;
  /** True when the job was running: its node must abort it. */
  running: boolean;
  node: string | null;
}

/** Which jobs a bulk operation (retry, cancel, delete, count) acts on: list_jobs's filter without a page size. */
export type JobMatch = Omit<JobListFilter, 'limit'>;

/** The bulk operations: each applies to some states only (see bulkStates). */
export type BulkOperation = 'cancel' | 'retry' | 'delete';

export interface RetryOutcome {
  id: string;
  partition: string;
  queue: string;
  type: string;
  /** Attempts made before the retry (the next run's first attempt is this plus one). */
  attempts: number;
  queueKey: string | null;
  /** False when a live job holds the job's queue key: it stays finished. */
  retried: boolean;
  /** The raised attempt limit (retried jobs only). */
  maxAttempts: number | null;
}

export interface BulkCancelOutcome extends CancelOutcome {
  queue: string;
  type: string;
  attempts: number;
}

export async function cancel(ctx: StoreContext, ids: string[]): Promise<CancelOutcome[]> {
  if (ids.length === 0) return [];
  const rows = await op.cancelJobs(ctx.ops, ctx.pool, [ids]);
  await settleKeys(
    ctx,
    rows.filter((r) => !r.running),
  );
  return rows.map((r) => ({ id: r.id, partition: r.partition, node: r.node, running: r.running }));
}

/**
 * Moves up to `limit` failed or cancelled jobs matching `match` (newest first) back to the live
 * table, queued to run now, in one statement; see sql/ops/retry_jobs.sql. `maxAttempts`: the
 * attempts the new run gets (default: the job type's, as nodes registered it). Jobs whose queue
 * key is held come back with `retried: false`.
 */
export async function retryJobs(ctx: StoreContext, match: JobMatch, limit: number, maxAttempts?: number): Promise<RetryOutcome[]> {
  checkBatchLimit(limit);
  if (maxAttempts !== undefined && (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 1000)) {
    throw new ValidationError('must be an integer from 1 to 1000 (the attempts the retried job gets)', 'maxAttempts');
  }
  const { finished } = bulkStates('retry', match.states);
  const rows = await op.retryJobs(ctx.ops, ctx.pool, [...matchParams(match), finished, limit, maxAttempts ?? null]);
  await settleKeys(
    ctx,
    rows.filter((r) => r.retried),
  );
  return rows.map((r) => ({
    id: r.id,
    partition: r.partition,
    queue: r.queue,
    type: r.type,
    attempts: r.attempts,
    queueKey: r.queue_key,
    retried: r.retried,
    maxAttempts: r.max_attempts,
  }));
}

/**
 * Cancels up to `limit` live jobs matching `match` (newest first) in one statement, as cancel()
 * does by id; running jobs already asked to cancel are left out. See sql/ops/cancel_matching.sql.
 */
export async function cancelMatching(ctx: StoreContext, match: JobMatch, limit: number): Promise<BulkCancelOutcome[]> {
  checkBatchLimit(limit);
  const { live } = bulkStates('cancel', match.states);
  const rows = await op.cancelMatching(ctx.ops, ctx.pool, [...matchParams(match), live, limit]);
  await settleKeys(
    ctx,
    rows.filter((r) => !r.running),
  );
  return rows.map((r) => ({
    id: r.id,
    partition: r.partition,
    queue: r.queue,
    type: r.type,
    attempts: r.attempts,
    node: r.node,
    running: r.running,
  }));
}

/**
 * Deletes up to `limit` jobs matching `match` (newest first) in one statement: finished jobs
 * from history and live jobs that are not running. See sql/ops/delete_matching.sql.
 */
export async function deleteMatching(
  ctx: StoreContext,
  match: JobMatch,
  limit: number,
): Promise<{ id: string; partition: string; live: boolean }[]> {
  checkBatchLimit(limit);
  const { live, finished } = bulkStates('delete', match.states);
  const rows = await op.deleteMatching(ctx.ops, ctx.pool, [...matchParams(match), live, finished, limit]);
  await settleKeys(ctx, rows);
  return rows.map((r) => ({ id: r.id, partition: r.partition, live: r.live }));
}

/**
 * How many jobs match `match` among those `operation` applies to, by shown state. For delete,
 * running jobs are counted too (under `running`): delete leaves them alone, and says so.
 */
export async function countMatching(
  ctx: StoreContext,
  match: JobMatch,
  operation: BulkOperation,
): Promise<Partial<Record<JobRecord['state'], number>>> {
  const { live, finished } = bulkStates(operation, match.states);
  const liveCounted = operation === 'delete' && live !== null && match.states?.includes('running') ? [...live, 'running'] : live;
  const rows = await op.countMatching(ctx.ops, ctx.pool, [...matchParams(match), liveCounted, finished, operation === 'cancel']);
  return Object.fromEntries(rows.map((r) => [r.state, r.count]));
}

/** The states each bulk operation applies to, on each side (live table, history). */
const BULK_STATES: Record<BulkOperation, { live: readonly string[]; finished: readonly string[]; none: string }> = {
  cancel: { live: LIVE_JOB_STATES, finished: [], none: 'cancel applies to live jobs (queued, scheduled, waiting, running)' },
  retry: { live: [], finished: ['failed', 'cancelled'], none: 'retry applies to failed and cancelled jobs' },
  delete: {
    live: ['queued', 'scheduled', 'waiting'],
    finished: FINISHED_JOB_STATES,
    none: 'delete applies to finished jobs and to live jobs that are not running (cancel running jobs first)',
  },
};

/**
 * The state arrays of a bulk statement for `operation` and the filter's states: null for "every
 * state the operation applies to on that side", [] for "none on that side". States the operation
 * does not apply to are dropped; a filter left with none is a ValidationError saying which apply.
 */
function bulkStates(operation: BulkOperation, states: readonly string[] | undefined): { live: string[] | null; finished: string[] | null } {
  const applies = BULK_STATES[operation];
  if (!states?.length) {
    return {
      live: applies.live.length ? null : [],
      finished: applies.finished.length === FINISHED_JOB_STATES.length ? null : [...applies.finished],
    };
  }
  const live = applies.live.filter((s) => states.includes(s));
  const finished = applies.finished.filter((s) => states.includes(s));
  if (live.length + finished.length === 0) throw new ValidationError(`${applies.none}; none of ${states.join(', ')}`, 'states');
  return { live, finished };
}

function checkBatchLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new ValidationError('must be a whole number ≥ 1', 'limit');
}
