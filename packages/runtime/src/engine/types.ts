import type { Logger, RateLimitConfig } from '@partita/core';
import type { EngineStore } from '@partita/postgres';
import type { OutcomeContinuation, ResolvedJobDefinition } from '../define.js';
import type { Metrics } from '../metrics.js';
import type { EngineEvent } from './messages.js';

/** The store the engine claims from and records into: @partita/postgres's EngineStore port. */
export type { EngineStore };

export interface EngineSettings {
  leaseMs: number;
  pollMs: number;
  /** Extra jobs claimed per queue beyond free slots, so a slot never waits on a round trip. */
  prefetch: number;
  /** The prefetch grows up to this while a queue's jobs finish faster than a claim refills them. */
  maxPrefetch: number;
  /** How often the node renews its leases; claims stop while renewals fail or go missing. */
  heartbeatMs: number;
  /** How long finished jobs wait to be committed together. */
  flushMs: number;
  /** A flush starts at once when this many outcomes are waiting. */
  flushBatch: number;
}

export interface EngineOptions {
  nodeId: string;
  partition: string;
  queues: Record<string, { concurrency: number; rateLimit?: RateLimitConfig }>;
  definitions: Map<string, ResolvedJobDefinition>;
  store: EngineStore;
  settings: EngineSettings;
  logger: Logger;
  /** Registry name of the partition's WorkerSupervisor. */
  workersName: string;
  /** Job lifecycle events, for the bus (fire and forget; must not throw; it gathers them into batches). */
  events?: (event: EngineEvent) => void;
  /**
   * Jobs of these queues became claimable: handed back, or a job holding an execution key ended
   * (the claim skipped the key's other jobs). This engine claims again by itself; the hook tells
   * the other nodes (a wake-up over the bus).
   */
  claimable?: (queues: string[]) => void;
  /**
   * These queues have free slots and nothing to claim: the node advertises them, so a client may
   * enqueue its next job straight into this engine's hands (see `handoff`). Called after claims
   * that found a queue empty (an idle engine claims at every poll); `free` 0 takes an advert back.
   */
  idle?: (queues: { queue: string; free: number }[]) => void;
  metrics?: Metrics;
  /** Queues this node has stopped running (node.stopQueues), read when the engine (re)starts. */
  held?: () => Iterable<string>;
  /** Continuations of plugins, run in the transaction of their types' final outcomes (see Continuation). */
  continuations?: readonly OutcomeContinuation[];
}
