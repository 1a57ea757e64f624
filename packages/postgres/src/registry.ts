import type pg from 'pg';
import { UnknownPartitionError, UnknownQueueError } from '@partita/core';
import type { StoreContext } from './context.js';
import * as op from './ops.js';

// What nodes declare: their partitions' queues and the job types they define.

/** A job type as nodes register it: what a client needs to enqueue it without the definition. */
export interface RegisteredJobType {
  type: string;
  queue: string;
  maxAttempts: number;
  timeoutMs: number | null;
  /** Key templates ('invoice:{invoice}'); null when the type declares none as data. */
  queueKey: string | null;
  executionKey: string | null;
}

/** Throws UnknownPartitionError unless some node declared this partition (cached; re-read on a miss). */
export async function assertKnownPartition(ctx: StoreContext, partition: string): Promise<void> {
  if (ctx.known?.has(partition)) return;
  ctx.known = await knownQueues(ctx);
  if (!ctx.known.has(partition)) throw new UnknownPartitionError(partition, [...ctx.known.keys()].sort());
}

/** Throws UnknownPartitionError or UnknownQueueError unless some node declared each of these queues (cached; re-read on a miss). */
/**
 * Whether every partition and queue of `rows` is known already (or not checked): then
 * assertKnownQueues has nothing to do, and a caller that skips it sends its statement in the same
 * tick (a transaction that sends several statements together keeps them in the order it made them).
 */
export function queuesKnown(ctx: StoreContext, rows: { partition: string; queue: string }[]): boolean {
  if (!ctx.checkQueues) return true;
  const known = ctx.known;
  return known !== undefined && rows.every((r) => known.get(r.partition)?.has(r.queue));
}

export async function assertKnownQueues(
  ctx: StoreContext,
  rows: { partition: string; queue: string }[],
  tx?: pg.PoolClient,
): Promise<void> {
  if (!ctx.checkQueues) return;
  const missing = (known: Map<string, Set<string>>) => rows.find((r) => !known.get(r.partition)?.has(r.queue));
  if (ctx.known && !missing(ctx.known)) return;
  // Inside a transaction, on its own connection: transactions that each waited for a second pool
  // connection here (many concurrent enqueues on a fresh client) held the whole pool and never got one.
  ctx.known = await knownQueues(ctx, tx);
  const row = missing(ctx.known);
  if (!row) return;
  const queues = ctx.known.get(row.partition);
  if (!queues) throw new UnknownPartitionError(row.partition, [...ctx.known.keys()].sort());
  throw new UnknownQueueError(row.partition, row.queue, [...queues].sort());
}

/** Partitions and their queues as declared by every node that ever registered. */
export async function knownQueues(ctx: StoreContext, tx?: pg.PoolClient): Promise<Map<string, Set<string>>> {
  const rows = await op.knownQueues(ctx.ops, tx ?? ctx.pool, []);
  const known = new Map<string, Set<string>>();
  for (const r of rows) {
    let set = known.get(r.partition);
    if (!set) known.set(r.partition, (set = new Set()));
    set.add(r.queue);
  }
  return known;
}

export async function registerQueues(
  ctx: StoreContext,
  nodeId: string,
  queues: { partition: string; queue: string; concurrency: number }[],
): Promise<void> {
  if (queues.length === 0) return;
  await op.registerQueues(ctx.ops, ctx.pool, [
    queues.map((q) => q.partition),
    queues.map((q) => q.queue),
    queues.map((q) => q.concurrency),
    nodeId,
  ]);
  ctx.known = undefined;
}

/** Records the job types a node defines, with the keys they declare as templates (null: none, or a function). */
export async function registerJobTypes(ctx: StoreContext, nodeId: string, types: RegisteredJobType[]): Promise<void> {
  if (types.length === 0) return;
  await op.registerJobTypes(ctx.ops, ctx.pool, [
    types.map((t) => t.type),
    types.map((t) => t.queue),
    types.map((t) => t.maxAttempts),
    types.map((t) => t.timeoutMs),
    types.map((t) => t.queueKey ?? null),
    types.map((t) => t.executionKey ?? null),
    nodeId,
  ]);
}

/** Defaults and key templates of every job type some node has defined, by type. */
export async function jobTypes(ctx: StoreContext): Promise<Map<string, Omit<RegisteredJobType, 'type'>>> {
  const rows = await op.jobTypes(ctx.ops, ctx.pool, []);
  return new Map(
    rows.map((r) => [
      r.type,
      { queue: r.queue, maxAttempts: r.max_attempts, timeoutMs: r.timeout_ms, queueKey: r.queue_key, executionKey: r.execution_key },
    ]),
  );
}
