/**
 * What the engine's neighbours say to it and read from it: its mailbox (`EngineMsg`), the job
 * events it emits, its stats and the controls it obeys. Types only, in a file of their own, so the
 * worker, lease keeper, seat, quorum and metrics depend on this contract and not on the engine.
 */
import type { JobError } from '@partita/core';
import type { ClaimedJob, RateLimitOutcome } from '@partita/postgres';
import type { ControlState } from '../global/global.js';
import type { FlushBatch, Flushed } from './outcomes.js';

/** How a worker's run of one attempt ended, as it reports it to its engine. */
export interface WorkerOutcome {
  ok: boolean;
  result?: unknown;
  /** The result's JSON text, checked where perform returned it; absent for a null or undefined result. */
  json?: string;
  error?: unknown;
  /** The abort reason, when the run ended because its signal fired. */
  aborted: unknown;
}

/** A worker's attempt ended: the message is its outcome too (one object per job, not two). */
export interface WorkerDone extends WorkerOutcome {
  t: 'done';
  job: ClaimedJob;
}

export type EngineEventKind = 'started' | 'progress' | 'completed' | 'failed' | 'retrying' | 'cancelled';
export interface EngineEvent {
  kind: EngineEventKind;
  job: ClaimedJob;
  result?: unknown;
  error?: JobError | null;
  progress?: unknown;
  retryAt?: Date;
}

/** Cluster-wide controls the engine obeys: paused queues and a throttle (ms before each claim; -1 stops claiming). */
export interface EngineControl {
  paused?: string[];
  throttleMs?: number;
}

export type EngineMsg =
  /** Jobs may be claimable (an enqueue elsewhere, a key freed): claim without waiting for the poll. */
  | { t: 'wake'; queues?: string[] }
  /** A job a client enqueued straight into this node's hands (already its running attempt in Postgres). */
  | { t: 'handoff'; job: ClaimedJob }
  /**
   * A continuation's transaction ended: `jobs` it stored as this node's running attempts (none when it
   * rolled back), `reserved` the queue of each place it had taken in the claim window.
   */
  | { t: 'here'; jobs: ClaimedJob[]; reserved: string[] }
  | { t: 'poll' }
  | { t: 'claimed'; jobs: ClaimedJob[]; asked: Map<string, number>; found: Map<string, number> }
  | { t: 'claimFailed'; error: unknown; asked: Map<string, number> }
  /** What the rate limits did in a claim (sent before its 'claimed'). */
  | { t: 'rateLimited'; limited: Map<string, RateLimitOutcome> }
  /** A full rate-limit bucket has a token again. */
  | { t: 'rateReady' }
  /** A worker's attempt ended. */
  | WorkerDone
  | { t: 'progress'; id: string; value: unknown; json: string }
  | { t: 'flush' }
  /** A batch was written, maybe in part (see Flushed). */
  | Flushed
  | { t: 'flushFailed'; batch: FlushBatch; error: unknown }
  /** A flush's completions queued their keys' next jobs (not taken here): `queues` have a claimable job now. */
  | { t: 'keysSettled'; queues: string[] }
  /** Asked by the lease keeper: the ids whose leases this engine holds (the reply). */
  | { t: 'held' }
  /** The lease keeper's renewal result for the ids it checked. */
  | { t: 'leases'; checked: string[]; renewed: Set<string>; cancelRequested: string[] }
  | { t: 'heartbeatFailed' }
  | { t: 'cancel'; ids: string[] }
  | { t: 'drain'; graceMs: number; done: () => void }
  /**
   * Stop running these queues on this node (node.stopQueues): no claims, prefetched jobs handed back,
   * `done` once their running jobs have ended (aborted and handed back after graceMs) and are recorded.
   */
  | { t: 'stopQueues'; queues: string[]; graceMs: number; done: () => void }
  /** Run these queues again (node.startQueues). */
  | { t: 'startQueues'; queues: string[] }
  | { t: 'control'; state: ControlState }
  | { t: 'stats' };

export interface EngineStats {
  partition: string;
  running: number;
  prefetched: number;
  queues: Record<string, { concurrency: number; running: number; prefetched: number; rateLimit?: RateLimitStats }>;
  processed: number;
  draining: boolean;
  paused: string[];
  /** Of the paused queues, those a throttle of -1 stops (not a pause: `throttle off` lifts them, not resume). */
  stopped: string[];
  /** Queues this node has stopped running on its own (node.stopQueues), whatever the controls say. */
  held: string[];
  throttleMs: number;
}

/** A rate-limited queue as this engine's last claim of it saw its buckets (cluster-wide figures). */
export interface RateLimitStats {
  limit: number;
  periodMs: number;
  key?: string;
  /** Limited as a whole: tokens its bucket had left; null before the first claim, and per key. */
  tokensLeft: number | null;
  /** While a key was at its limit: due jobs (up to the free slots) the claim left queued. */
  held: number;
  /** Keys at their limit (a queue limited as a whole is one key). */
  limitedKeys?: number;
}
