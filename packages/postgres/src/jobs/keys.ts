import type pg from 'pg';
import type { StoreContext } from '../context.js';
import * as op from '../ops.js';
import type { SettleRow } from '../ops.js';

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

/** How many of the jobs behind a held key executionKeys names (it counts them all). */
export const WAITERS_SHOWN = 10;

/** Per held execution key: who holds it, and the jobs behind it (the first WAITERS_SHOWN in claim order, and how many there are). */
export interface HeldExecutionKey {
  holder: string;
  waiters: string[];
  waiting: number;
}

/** Execution keys held by running jobs of a partition, each with the jobs behind it (the first few in claim order, and their count). */
export async function executionKeys(ctx: StoreContext, partition: string): Promise<Record<string, HeldExecutionKey>> {
  const rows = await op.heldExecutionKeys(ctx.ops, ctx.pool, [partition, WAITERS_SHOWN]);
  return Object.fromEntries(rows.map((r) => [r.execution_key, { holder: r.holder, waiters: r.waiters, waiting: r.waiting }]));
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
  if (row) await settleKeys(ctx, [{ partition, execution_key: key }]);
  return row;
}

/** How many times a key is settled again under its lock (a promoted job cancelled meanwhile) before maintenance is left to it. */
const SETTLE_ROUNDS = 4;

/**
 * Gives the execution keys of jobs a statement just ended, requeued or dropped their next head
 * (settle_execution_keys): the first waiting job of each becomes queued. Rows without a key are
 * skipped; with none left this costs nothing. The first try takes no lock beforehand; keys an
 * enqueue touched meanwhile (a busy key, whose enqueues could refuse it again and again) are
 * settled again inside a transaction that first locks their head rows, so enqueues wait and the
 * settle goes through. Keys still unsettled after that are left to maintenance (settleStaleKeys).
 * `db`: a transaction's client, to settle inside it. Returns the queues a job became claimable in.
 */
export async function settleKeys(
  ctx: StoreContext,
  rows: Iterable<{ partition: string; execution_key: string | null }>,
  db?: pg.PoolClient,
): Promise<string[]> {
  // The statement before it has committed its outcome: failing the call now would have the caller
  // write that outcome again (and be refused). A key left unsettled waits for maintenance instead.
  // Inside a caller's transaction the error is the transaction's, so it propagates.
  if (db) return settle(ctx, rows, db);
  try {
    return await settle(ctx, rows);
  } catch (err) {
    ctx.logger.warn({ err: (err as Error).message }, 'settling execution keys failed; maintenance settles them');
    return [];
  }
}

async function settle(
  ctx: StoreContext,
  rows: Iterable<{ partition: string; execution_key: string | null }>,
  db?: pg.PoolClient,
): Promise<string[]> {
  const partitions: string[] = [];
  const keys: string[] = [];
  for (const r of rows) {
    if (r.execution_key === null) continue;
    partitions.push(r.partition);
    keys.push(r.execution_key);
  }
  const queues = new Set<string>();
  if (keys.length === 0) return [];
  const promoted = (rows: SettleRow[]) => {
    for (const r of rows) if (!r.retry && r.queue !== null) queues.add(r.queue);
    return retried(rows);
  };
  let left = promoted(await op.settleExecutionKeys(ctx.ops, db ?? ctx.pool, [partitions, keys]));
  if (left.keys.length === 0) return [...queues];
  const locked = async (client: pg.PoolClient) => {
    for (let round = 0; round < SETTLE_ROUNDS && left.keys.length > 0; round++) {
      await op.lockExecutionKeyHeads(ctx.ops, client, [left.partitions, left.keys]);
      left = promoted(await op.settleExecutionKeys(ctx.ops, client, [left.partitions, left.keys]));
    }
  };
  if (db) await locked(db);
  else {
    const client = await ctx.pool.connect();
    try {
      await client.query('BEGIN');
      await locked(client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
  if (left.keys.length > 0) ctx.logger.warn({ keys: left.keys.length }, 'execution keys left unsettled; maintenance settles them');
  return [...queues];
}

function retried(rows: SettleRow[]): { partitions: string[]; keys: string[] } {
  const partitions: string[] = [];
  const keys: string[] = [];
  for (const r of rows) {
    if (!r.retry) continue;
    partitions.push(r.partition);
    keys.push(r.execution_key);
  }
  return { partitions, keys };
}

/** Per store: the keys the last maintenance pass found unsettled, and when it ran. */
const sweeps = new WeakMap<StoreContext, { at: number; suspects: Set<string> }>();

/** How often maintenance looks for unsettled keys when the last look found none. */
const SWEEP_EVERY_MS = 10_000;

/**
 * Maintenance: settles keys whose head left without being settled (a crash or an error between a
 * statement and its settle). A key is settled only when two passes in a row found it unsettled:
 * most keys found once are being settled right now by the statement's caller, and settling them
 * here too would only make the two wait on each other's locks. The look walks every head row and
 * every key with waiting jobs, so it runs every SWEEP_EVERY_MS, and at the next call after a look
 * that found suspects.
 */
export async function settleStaleKeys(ctx: StoreContext, limit = 1000): Promise<number> {
  const last = sweeps.get(ctx);
  const now = Date.now();
  if (last && last.suspects.size === 0 && now - last.at < SWEEP_EVERY_MS) return 0;
  const stale = await op.staleExecutionKeys(ctx.ops, ctx.pool, [limit]);
  const suspects = new Set(stale.map((r) => `${r.partition}\u0000${r.execution_key}`));
  sweeps.set(ctx, { at: now, suspects });
  const due = stale.filter((r) => last?.suspects.has(`${r.partition}\u0000${r.execution_key}`));
  if (due.length > 0) await settleKeys(ctx, due);
  return due.length;
}
