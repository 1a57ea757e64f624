import type pg from 'pg';
import { LeaseLostError, ValidationError } from '@partita/core';
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

/**
 * The lease operations a leader seat needs: the narrow port over `<schema>.leases`. Names are free
 * text ('maintenance', 'schedule:nightly'); Global's are 'global:<partition>' (`globalLeaseName`).
 * The semantics are those of `Leases`, which implements it.
 */
export interface LeaseStore {
  /** Takes or re-takes the lease; undefined while another holder has a live one. */
  acquire(name: string, holder: string, ttlMs: number): Promise<AcquiredLease | undefined>;
  /** Extends it; false when `holder` no longer holds it at `epoch` (taken over or released). */
  renew(name: string, holder: string, epoch: number, ttlMs: number): Promise<boolean>;
  /** Expires it at once, so another holder takes it on its next attempt; nothing when it is not ours at `epoch`. */
  release(name: string, holder: string, epoch: number): Promise<void>;
  /** The lease's row (also when expired: see `live`); undefined when it was never taken. */
  holder(name: string): Promise<LeaseHolder | undefined>;
  /** Moves the epoch of a live lease we hold up to at least `atLeast`; undefined when it is not ours at `epoch`. */
  raiseEpoch(name: string, holder: string, epoch: number, atLeast: number): Promise<number | undefined>;
}

/** The lease that elects a partition's Global. */
export function globalLeaseName(partition: string): string {
  return `global:${partition}`;
}

const MAX_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Name-keyed leadership leases with epoch fencing, in `<schema>.leases`. Every time is taken from
 * the database clock (`now()`), never the node's, so clock skew between nodes cannot make two of
 * them believe they lead. Each operation is one statement.
 *
 * - `acquire` takes a free, expired or released lease and increments its epoch; re-acquiring a lease
 *   this holder still holds (live) keeps the epoch, so a retried acquire is harmless.
 * - `renew` extends it for (holder, epoch). A lease that expired but nobody took yet may still be
 *   renewed: a take-over always increments the epoch, so a match proves nobody led in between.
 *   The holder should still stop acting as leader when its own deadline (time of the last
 *   successful renew's request + ttl) passes, and resume only after a renew succeeds.
 * - `release` expires it now (graceful stop), so another node takes over on its next attempt.
 * - `assertHolder` fences a write: inside the writer's transaction it refuses (LeaseLostError)
 *   unless the lease is live at that epoch, and keeps any take-over from committing before the
 *   writer does. A statement can fence itself instead with `<schema>.lease_held(name, epoch)`.
 */
export class Leases extends SqlOps implements LeaseStore {
  async acquire(name: string, holder: string, ttlMs: number): Promise<AcquiredLease | undefined> {
    checkArgs(name, holder, ttlMs);
    const [row] = await this.run<{ epoch: string; expires_at: Date; acquired_at: Date }>('lease_acquire', [name, holder, ttlMs]);
    return row ? { epoch: Number(row.epoch), expiresAt: row.expires_at, acquiredAt: row.acquired_at } : undefined;
  }

  async renew(name: string, holder: string, epoch: number, ttlMs: number): Promise<boolean> {
    checkArgs(name, holder, ttlMs);
    checkEpoch(epoch);
    return (await this.run('lease_renew', [name, holder, epoch, ttlMs])).length === 1;
  }

  async release(name: string, holder: string, epoch: number): Promise<void> {
    checkArgs(name, holder);
    checkEpoch(epoch);
    await this.run('lease_release', [name, holder, epoch]);
  }

  async holder(name: string): Promise<LeaseHolder | undefined> {
    checkName(name);
    const [row] = await this.run<{ holder: string; epoch: string; expires_at: Date; acquired_at: Date; live: boolean; released: boolean }>(
      'lease_holder',
      [name],
    );
    if (!row) return undefined;
    return {
      holder: row.holder,
      epoch: Number(row.epoch),
      expiresAt: row.expires_at,
      acquiredAt: row.acquired_at,
      live: row.live,
      released: row.released,
    };
  }

  /**
   * For a leader that loads state saved under a higher epoch than its own — the lease table was
   * reset while the persisted state survived — so its fenced writes are not refused forever.
   */
  async raiseEpoch(name: string, holder: string, epoch: number, atLeast: number): Promise<number | undefined> {
    checkArgs(name, holder);
    checkEpoch(epoch);
    checkEpoch(atLeast);
    const [row] = await this.run<{ epoch: string }>('lease_raise_epoch', [name, holder, epoch, atLeast]);
    return row ? Number(row.epoch) : undefined;
  }

  /**
   * Fences a write made as the holder of `name` at `epoch`: run it on the writer's transaction
   * (`tx.client` of JobStore.withTransaction, or any client inside BEGIN … COMMIT) before or after
   * the write. Throws LeaseLostError when the lease is not live at that epoch, so the transaction
   * rolls back; otherwise the lease row stays locked until it ends, and no take-over commits first.
   * Outside a transaction the lock ends with the statement and the check only tells the present.
   */
  async assertHolder(client: pg.ClientBase | pg.Pool, name: string, epoch: number): Promise<void> {
    checkName(name);
    checkEpoch(epoch);
    const stmt = this.statement('lease_check');
    const { rows } = await client.query<{ held: boolean }>({ name: stmt.name, text: stmt.text, values: [name, epoch] });
    if (rows[0]?.held === true) return;
    const current = await this.holder(name);
    throw new LeaseLostError(name, epoch, current && { holder: current.holder, epoch: current.epoch });
  }
}

/**
 * The Global leases, by partition: `Leases` under the names `global:<partition>`. Kept for callers
 * that think in partitions; the Global seat itself uses `Leases` through its leader seat.
 */
export class PartitionLeases {
  readonly leases: Leases;

  constructor(pool: pg.Pool, schema: string) {
    this.leases = new Leases(pool, schema);
  }

  /** Takes or re-takes the partition's lease; undefined when another node holds a live one. */
  acquire(partition: string, nodeId: string, ttlMs: number): Promise<AcquiredLease | undefined> {
    return this.leases.acquire(globalName(partition), nodeId, ttlMs);
  }

  /** Extends the lease; false when this node no longer holds it at `epoch` (taken over or released). */
  renew(partition: string, nodeId: string, epoch: number, ttlMs: number): Promise<boolean> {
    return this.leases.renew(globalName(partition), nodeId, epoch, ttlMs);
  }

  /** Expires the lease at once so another node can take it (graceful stop). */
  release(partition: string, nodeId: string, epoch: number): Promise<void> {
    return this.leases.release(globalName(partition), nodeId, epoch);
  }

  /** The partition's lease row (also when expired: see `live`); undefined when it never had one. */
  holder(partition: string): Promise<LeaseHolder | undefined> {
    return this.leases.holder(globalName(partition));
  }

  /** See Leases.raiseEpoch. */
  raiseEpoch(partition: string, nodeId: string, epoch: number, atLeast: number): Promise<number | undefined> {
    return this.leases.raiseEpoch(globalName(partition), nodeId, epoch, atLeast);
  }
}

function globalName(partition: string): string {
  if (typeof partition !== 'string' || partition.length === 0) throw new ValidationError('must be a non-empty string', 'partition');
  return globalLeaseName(partition);
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw new ValidationError('must be a non-empty string (the lease name)', 'name');
}

function checkArgs(name: string, holder: string, ttlMs?: number): void {
  checkName(name);
  if (typeof holder !== 'string' || holder.length === 0) throw new ValidationError('must be a non-empty string (the node id)', 'holder');
  if (ttlMs !== undefined && (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS)) {
    throw new ValidationError(`must be a number of milliseconds above 0 and at most ${MAX_TTL_MS}`, 'ttlMs');
  }
}

function checkEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch < 0)
    throw new ValidationError('must be a non-negative integer (the epoch acquire returned)', 'epoch');
}
