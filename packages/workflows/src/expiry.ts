/**
 * Retention: finished workflows are kept their graph's `expire` seconds, pending ones their
 * `pending` seconds, early signals the graph's `expire`; then every node's sweep removes them in
 * bounded batches (one statement each, rows other sweepers hold skipped), a few batches per sweep
 * so a backlog drains without one long transaction.
 */
import { runOn, type Queryable, type WfOps } from './db.js';

export interface ExpirySweep {
  /** Rows per statement (workflows and signals each). */
  batch: number;
  /** Statements per sweep at most; a sweep stops early when a batch comes back short. */
  maxBatches: number;
}

export const DEFAULT_SWEEP: ExpirySweep = { batch: 5_000, maxBatches: 20 };

/** One sweep: removes expired workflows and signals; how many of each it removed. */
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
