import type { StoreContext } from './context.js';
import * as op from './ops.js';
import { ROLL_CALL_NOTICE, notifyChannel } from './notices.js';

// The nodes table: roll call from Postgres, for processes without the bus.

/** Roll call from Postgres: the profiles stored by the nodes of `cluster` seen within `beats` of their heartbeats. */
export async function nodesSeen(
  ctx: StoreContext,
  cluster: string,
  beats = 3,
): Promise<{ id: string; info: Record<string, unknown>; heartbeatAt: Date; ageMs: number }[]> {
  const rows = await op.nodesSeen(ctx.ops, ctx.pool, [cluster, beats]);
  return rows.map((r) => ({ id: r.id, info: r.info, heartbeatAt: r.heartbeat_at, ageMs: r.age_ms }));
}

/**
 * Asks every node listening on the schema's channel to store its profile now (a heartbeat);
 * returns the database's time of asking, to tell fresh rows from older ones.
 */
export async function requestRollCall(ctx: StoreContext): Promise<Date> {
  const [row] = await op.rollCallRequest(ctx.ops, ctx.pool, [notifyChannel(ctx.schema), ROLL_CALL_NOTICE]);
  return row!.asked_at;
}

/** Removes a stopping node from the roll call. */
export async function leaveNodes(ctx: StoreContext, nodeId: string): Promise<void> {
  await op.nodeLeave(ctx.ops, ctx.pool, [nodeId]);
}
