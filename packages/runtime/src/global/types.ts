/**
 * The state one partition's Global coordinator holds and persists. Queue keys and execution keys
 * are not here: partial unique indexes in Postgres hold them in the same transaction as the enqueue
 * (a live job per queue key) and the claim (a running job per execution key), and Global's key
 * operations read and clear those.
 */
export interface GlobalSnapshot {
  version: 1;
  partition: string;
  /** Lease epoch of the leader that saved it. */
  epoch: number;
  savedAt: string;
  /** Job ids asked to cancel and not finished yet. */
  cancelled: string[];
  /** Queues whose claims are stopped on every node. */
  paused: string[];
  /** Throttles: ms before each claim (-1: no claims), narrowed by queue and/or node. */
  throttles: ThrottleRule[];
}

export type { ThrottleRule } from '@partita/protocol';
import type { ThrottleRule } from '@partita/protocol';

/** Roger's StatePersister, in TypeScript. */
export interface Persister {
  load(partition: string): Promise<GlobalSnapshot | undefined>;
  /** Throws StaleEpochError when a save from a newer epoch is already recorded. */
  save(partition: string, snapshot: GlobalSnapshot, epoch: number): Promise<void>;
  close?(): Promise<void>;
}

export function emptySnapshot(partition: string, epoch: number): GlobalSnapshot {
  return { version: 1, partition, epoch, savedAt: new Date(0).toISOString(), cancelled: [], paused: [], throttles: [] };
}
