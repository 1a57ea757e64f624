import { ValidationError } from '@partita/core';
import type { StoreContext } from './context.js';
import * as op from './ops.js';

// Upkeep of the schema: its migrations and the daily partitions of jobs_history.

/** A row of the schema's `migrations` table. */
export interface AppliedMigration {
  version: number;
  name: string;
  appliedAt: Date;
}

/** The migrations applied to this schema, oldest first. */
export async function appliedMigrations(ctx: StoreContext): Promise<AppliedMigration[]> {
  const rows = await op.appliedMigrations(ctx.ops, ctx.pool, []);
  return rows.map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at }));
}

/** Makes sure daily history partitions exist from yesterday to `daysAhead` days ahead. */
export async function ensureHistoryPartitions(ctx: StoreContext, daysAhead = 7): Promise<number> {
  const [row] = await op.ensureHistoryPartitions(ctx.ops, ctx.pool, [daysAhead]);
  return row?.created ?? 0;
}

/** Drops history partitions that ended more than `retentionDays` ago; returns their names. */
export async function pruneHistory(ctx: StoreContext, retentionDays: number): Promise<string[]> {
  if (!Number.isInteger(retentionDays) || retentionDays < 0)
    throw new ValidationError('must be a whole number of days ≥ 0', 'retention.historyDays');
  const rows = await op.pruneHistory(ctx.ops, ctx.pool, [retentionDays]);
  return rows.map((r) => r.name);
}
