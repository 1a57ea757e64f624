/**
 * Retention. Workflows live with their activity records in partitions by the UTC day they started,
 * from their insert to their removal (finishing updates them in place), and go a whole day at a time:
 * one DROP once the day is over and its finished workflows have expired (reads stop returning a
 * workflow at its expiry, so the hours it waits for its day's drop are not seen). What must outlive
 * its day (still running, kept forever, kept 7 days past it) is carried to the 'infinity' partition
 * at the drop. Partitions are made ahead at every node's start and hourly, as job history's are.
 * What the drops do not take (carried rows past their time, pending workflows never resumed) and
 * early signals are few: the row sweep removes them in bounded batches (one statement each, rows
 * other sweepers hold skipped).
 */
import { ValidationError } from '@partita/core';
import { runOn, type Queryable, type WfOps } from './db.js';

export interface ExpirySweep {
  /** Rows per statement (workflows and signals each). */
  batch: number;
  /** Statements per sweep at most; a sweep stops early when a batch comes back short. */
  maxBatches: number;
}

export const DEFAULT_SWEEP: ExpirySweep = { batch: 5_000, maxBatches: 20 };

/**
 * Days of partitions made ahead of today (the least the SQL accepts): workflows start in today's, and
 * tomorrow's is there when the date turns between two hourly rounds.
 */
export const PARTITION_DAYS_AHEAD = 2;

/** One row sweep: removes expired carried and pending workflows and signals; how many of each it removed. */
export async function removeExpired(
  q: Queryable,
  ops: WfOps,
  sweep: ExpirySweep = DEFAULT_SWEEP,
): Promise<{ workflows: number; signals: number }> {
  const removed = { workflows: 0, signals: 0 };
  for (let i = 0; i < sweep.maxBatches; i++) {
    const [row] = await runOn<{ workflows: number; signals: number }>(q, ops, 'expired_remove', [sweep.batch]);
    removed.workflows += row?.workflows ?? 0;
    removed.signals += row?.signals ?? 0;
    if ((row?.workflows ?? 0) < sweep.batch && (row?.signals ?? 0) < sweep.batch) break;
  }
  return removed;
}

/** Makes the daily partitions from today to `daysAhead` days ahead; how many tables it created. */
export async function ensurePartitions(q: Queryable, ops: WfOps, daysAhead = PARTITION_DAYS_AHEAD): Promise<number> {
  if (!Number.isInteger(daysAhead) || daysAhead < PARTITION_DAYS_AHEAD)
    throw new ValidationError(`must be a whole number of days ≥ ${PARTITION_DAYS_AHEAD}`, 'daysAhead');
  const [row] = await runOn<{ created: number }>(q, ops, 'wf_partitions_ensure', [daysAhead]);
  return row?.created ?? 0;
}

/**
 * Drops the days that are over at `at` (the database's now; tests pass a later time) and whose
 * finished workflows have expired, each day's workflows and records in one statement, after carrying
 * what must outlive it to the 'infinity' partition; the days dropped (YYYYMMDD). A day whose locks
 * are not had within a second is left for the next round.
 */
export async function dropExpiredPartitions(q: Queryable, ops: WfOps, at?: Date): Promise<string[]> {
  const rows = await runOn<{ day: string }>(q, ops, 'wf_partitions_prune', [at ?? null]);
  return rows.map((r) => r.day);
}
