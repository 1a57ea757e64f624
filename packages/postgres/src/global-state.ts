import { StaleEpochError, ValidationError } from '@partita/core';
import { SqlOps } from './sql.js';
import * as op from './ops.js';

export interface StoredGlobalState {
  /** Epoch of the leader that saved it. */
  epoch: number;
  /** The snapshot as saved (parsed JSON); the caller validates its shape. */
  snapshot: unknown;
  savedAt: Date;
}

/**
 * Storage for the postgres persister: one row per partition in `<schema>.global_state`. A save is
 * one statement that refuses, in SQL, an epoch older than the saved one or than the partition's
 * current lease epoch (so a deposed leader is fenced even before its successor's first save).
 */
export class PostgresGlobalState extends SqlOps {
  /** Where a partition's state lives, for error messages. */
  describe(partition: string): string {
    return `row partition = '${partition}' of table "${this.schema}".global_state`;
  }

  async load(partition: string): Promise<StoredGlobalState | undefined> {
    const [row] = await op.globalStateLoad(this.ops, this.pool, [partition]);
    return row ? { epoch: Number(row.epoch), snapshot: row.snapshot, savedAt: row.saved_at } : undefined;
  }

  /**
   * Saves `snapshot` (any JSON value, or a string already holding its JSON text) for `epoch`.
   * Throws StaleEpochError, naming the newer epoch, when a newer epoch has saved or leased.
   */
  async save(partition: string, snapshot: unknown, epoch: number): Promise<void> {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new ValidationError('must be a non-negative integer (the lease epoch)', 'epoch');
    const json = typeof snapshot === 'string' ? snapshot : JSON.stringify(snapshot);
    if (json === undefined) throw new ValidationError('must be a JSON value', 'snapshot');
    const saved = await op.globalStateSave(this.ops, this.pool, [partition, epoch, json]);
    if (saved.length === 1) return;
    const [row] = await op.globalStateEpoch(this.ops, this.pool, [partition]);
    throw new StaleEpochError(partition, epoch, row?.epoch != null ? Number(row.epoch) : epoch + 1);
  }
}
