import type { StoreContext } from '../context.js';
import * as op from '../ops.js';

// Queue keys and execution keys: who holds them, and freeing them by hand.

/** Which live jobs hold these queue keys of a partition, by key (keys not held are absent). */
export async function queueKeyHolders(ctx: StoreContext, partition: string, queueKeys: string[]): Promise<Map<string, string>> {
  if (queueKeys.length === 0) return new Map();
  const rows = await op.queueKeyHolders(ctx.ops, ctx.pool, [partition, queueKeys]);
  return new Map(rows.map((r) => [r.queue_key, r.id]));
}

/** Which live job holds a queue key, if any. */
export async function queueKeyHolder(ctx: StoreContext, partition: string, queueKey: string): Promise<string | undefined> {
  const [row] = await op.queueKeyHolders(ctx.ops, ctx.pool, [partition, [queueKey]]);
  return row?.id;
}

/** Frees a queue key held by a live job (the job itself stays); returns whether one was held. */
export async function clearQueueKey(ctx: StoreContext, partition: string, queueKey: string): Promise<boolean> {
  return (await op.clearQueueKey(ctx.ops, ctx.pool, [partition, queueKey])).length > 0;
}

/** Execution keys held by running jobs of a partition, each with the queued jobs behind it in claim order. */
export async function executionKeys(ctx: StoreContext, partition: string): Promise<Record<string, { holder: string; waiters: string[] }>> {
  const rows = await op.heldExecutionKeys(ctx.ops, ctx.pool, [partition]);
  return Object.fromEntries(rows.map((r) => [r.execution_key, { holder: r.holder, waiters: r.waiters }]));
}

/** The running job holding an execution key, if any. */
export async function executionKeyHolder(ctx: StoreContext, partition: string, key: string): Promise<string | undefined> {
  const [row] = await op.executionKeyHolder(ctx.ops, ctx.pool, [partition, key]);
  return row?.id;
}

/** Frees an execution key by hand (its running job goes on without it); returns that job, if one held it. */
export async function releaseExecutionKey(
  ctx: StoreContext,
  partition: string,
  key: string,
): Promise<{ id: string; queue: string } | undefined> {
  const [row] = await op.releaseExecutionKey(ctx.ops, ctx.pool, [partition, key]);
  return row;
}
