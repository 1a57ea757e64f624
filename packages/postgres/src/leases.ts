import { ValidationError } from '@partita/core';
import { SqlOps } from './sql.js';

/** A lease this node holds: `epoch` is the fencing token every write made as leader must carry. */
export interface AcquiredLease {
  epoch: number;
  /** Database time at which the lease runs out unless renewed. */
  expiresAt: Date;
  /** Database time at which this holder took the lease (kept when a live lease is re-acquired). */
  acquiredAt: Date;
}

export interface LeaseHolder {
  holder: string;
  epoch: number;
  expiresAt: Date;
  acquiredAt: Date;
  /** True while the lease has not expired by the database clock: `holder` leads. */
  live: boolean;
  /** True when the holder handed it back gracefully (it is then expired, too). */
  released: boolean;
}

const MAX_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Per-partition leadership leases with epoch fencing, in `<schema>.partition_leases`. Every time
 * is taken from the database clock (`now()`), never the node's, so clock skew between nodes cannot
 * make two of them believe they lead. Each operation is one statement.
 *
 * - `acquire` takes a free, expired or released lease and increments its epoch; re-acquiring a lease
 *   this node still holds (live) keeps the epoch, so a retried acquire is harmless.
 * - `renew` extends it for (holder, epoch). A lease that expired but nobody took yet may still be
 *   renewed: a take-over always increments the epoch, so a match proves nobody led in between.
 *   The holder should still stop acting as leader when its own deadline (time of the last
 *   successful renew's request + ttl) passes, and resume only after a renew succeeds.
 * - `release` expires it now (graceful stop), so another node takes over on its next attempt.
 */
export class PartitionLeases extends SqlOps {
  /** Takes or re-takes the partition's lease; undefined when another node holds a live one. */
  async acquire(partition: string, nodeId: string, ttlMs: number): Promise<AcquiredLease | undefined> {
    checkArgs(partition, nodeId, ttlMs);
    const [row] = await this.run<{ epoch: string; expires_at: Date; acquired_at: Date }>('lease_acquire', [partition, nodeId, ttlMs]);
    return row ? { epoch: Number(row.epoch), expiresAt: row.expires_at, acquiredAt: row.acquired_at } : undefined;
  }

  /** Extends the lease; false when this node no longer holds it at `epoch` (taken over or released). */
  async renew(partition: string, nodeId: string, epoch: number, ttlMs: number): Promise<boolean> {
    checkArgs(partition, nodeId, ttlMs);
    checkEpoch(epoch);
    return (await this.run('lease_renew', [partition, nodeId, epoch, ttlMs])).length === 1;
  }

  /**
   * Expires the lease at once so another node can take it (graceful stop). Does nothing when the
   * lease is no longer ours at `epoch`; `holder()` tells what happened.
   */
  async release(partition: string, nodeId: string, epoch: number): Promise<void> {
    checkArgs(partition, nodeId);
    checkEpoch(epoch);
    await this.run('lease_release', [partition, nodeId, epoch]);
  }

  /** The partition's lease row (also when expired: see `live`); undefined when it never had one. */
  async holder(partition: string): Promise<LeaseHolder | undefined> {
    const [row] = await this.run<{ holder: string; epoch: string; expires_at: Date; acquired_at: Date; live: boolean; released: boolean }>(
      'lease_holder',
      [partition],
    );
    if (!row) return undefined;
    return { holder: row.holder, epoch: Number(row.epoch), expiresAt: row.expires_at, acquiredAt: row.acquired_at, live: row.live, released: row.released };
  }

  /**
   * Moves the epoch of a live lease this node holds up to at least `atLeast` and returns the new
   * epoch (unchanged when already that high); undefined when the lease is not ours at `epoch`.
   * For a leader that loads a snapshot saved under a higher epoch than its own — the lease table
   * was reset while the persisted state survived — so its saves are not refused forever.
   */
  async raiseEpoch(partition: string, nodeId: string, epoch: number, atLeast: number): Promise<number | undefined> {
    checkArgs(partition, nodeId);
    checkEpoch(epoch);
    checkEpoch(atLeast);
    const [row] = await this.run<{ epoch: string }>('lease_raise_epoch', [partition, nodeId, epoch, atLeast]);
    return row ? Number(row.epoch) : undefined;
  }
}

function checkArgs(partition: string, nodeId: string, ttlMs?: number): void {
  if (typeof partition !== 'string' || partition.length === 0) throw new ValidationError('must be a non-empty string', 'partition');
  if (typeof nodeId !== 'string' || nodeId.length === 0) throw new ValidationError('must be a non-empty string', 'nodeId');
  if (ttlMs !== undefined && (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS)) {
    throw new ValidationError(`must be a number of milliseconds above 0 and at most ${MAX_TTL_MS}`, 'ttlMs');
  }
}

function checkEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new ValidationError('must be a non-negative integer (the epoch acquire returned)', 'epoch');
}
