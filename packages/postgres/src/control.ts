import type { StoreContext } from './context.js';
import * as op from './ops.js';
import type { ControlRowRaw } from './ops.js';
import { controlNotice, notifyChannel, wakeNotice } from './notices.js';

// Pause and throttle state, kept in Postgres, and the notices that tell nodes about changes.

/** A pause/throttle change made in Postgres (see JobStore.changeControl). */
export type ControlChange = { op: 'pause' | 'resume'; queue: string } | { op: 'throttle'; ms: number; queue?: string; node?: string };

/** A partition's pause/throttle state as Postgres holds it; `version` grows with every change. */
export interface ControlRow {
  paused: string[];
  throttles: { ms: number; queue?: string; node?: string }[];
  version: number;
}

function controlRow(row: ControlRowRaw): ControlRow {
  // bigint comes back as a string from pg.
  return { paused: row.paused, throttles: row.throttles, version: Number(row.version) };
}

/**
 * Applies one pause, resume or throttle change to a partition's control row (the row as it is
 * now, so concurrent writers never undo each other) and notifies every node on the schema's
 * channel when it commits. Returns the partition's control state after the change.
 */
export async function changeControl(ctx: StoreContext, partition: string, change: ControlChange): Promise<ControlRow> {
  const queue = change.op === 'throttle' ? (change.queue ?? null) : change.queue;
  const [row] = await op.changeControl(ctx.ops, ctx.pool, [
    partition,
    change.op,
    queue,
    change.op === 'throttle' ? change.ms : 0,
    change.op === 'throttle' ? (change.node ?? null) : null,
    notifyChannel(ctx.schema),
    controlNotice(partition),
  ]);
  return controlRow(row!);
}

/**
 * A new Global leader's control state: the partition's row when it has one (changes are made
 * there first), else `initial` (its snapshot's), written as the row. The leader's epoch is recorded.
 */
export async function adoptControl(
  ctx: StoreContext,
  partition: string,
  initial: { paused: string[]; throttles: unknown[] },
  epoch: number,
): Promise<ControlRow> {
  const [row] = await op.adoptControl(ctx.ops, ctx.pool, [partition, initial.paused, JSON.stringify(initial.throttles), epoch]);
  return controlRow(row!);
}

/** A partition's pause/throttle state (nothing recorded: nothing paused or throttled, version 0). */
export async function loadControl(ctx: StoreContext, partition: string): Promise<ControlRow> {
  const [row] = await op.loadControl(ctx.ops, ctx.pool, [partition]);
  return row ? controlRow(row) : { paused: [], throttles: [], version: 0 };
}

/** Tells nodes listening on the schema's channel that jobs of these queues were enqueued (one notification). */
export async function notifyEnqueued(ctx: StoreContext, partition: string, queues: Iterable<string>): Promise<void> {
  await op.notify(ctx.ops, ctx.pool, [notifyChannel(ctx.schema), wakeNotice(partition, queues)]);
}
