import type { ActorContext, ActorRef, Behavior, SupervisorRef } from '@partita/actors';
import {
  JobCancelledError,
  UnstorableResultError,
  describeError,
  keyFromRule,
  traceClaim,
  traceComplete,
  type JobError,
  type Logger,
  type RateLimitConfig,
} from '@partita/core';
import { isRowRefusal, type ClaimedJob, type EngineStore, type RateLimitedClaimRequest, type RateLimitOutcome, type Recorded } from '@partita/postgres';
import { backoffDelay, type Continuation, type FinishedJob, type OutcomeContinuation, type ResolvedJobDefinition } from './define.js';
import { workerBehavior, type WorkerMsg, type WorkerOutcome } from './worker.js';
import type { ControlState } from './global/global.js';
import { effectiveControl, stoppedQueues } from './quorum.js';
import { IDLE_ADVERT_TTL_MS } from '@partita/protocol';
import type { FinishedState, Metrics } from './metrics.js';

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
  /** Continuations of plugins, run in the transaction of their types' final outcomes (see Continuation). */
  continuations?: readonly OutcomeContinuation[];
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
  | { t: 'wake'; queues?: string[] }
  /** A job a client enqueued straight into this node's hands (already its running attempt in Postgres). */
  | { t: 'handoff'; job: ClaimedJob }
  | { t: 'poll' }
  | { t: 'claimed'; jobs: ClaimedJob[]; asked: Map<string, number>; found: Map<string, number> }
  | { t: 'claimFailed'; error: unknown; asked: Map<string, number> }
  /** What the rate limits did in a claim (sent before its 'claimed'). */
  | { t: 'rateLimited'; limited: Map<string, RateLimitOutcome> }
  /** A full rate-limit bucket has a token again. */
  | { t: 'rateReady' }
  | { t: 'done'; job: ClaimedJob; outcome: WorkerOutcome }
  | { t: 'progress'; id: string; value: unknown; json: string }
  | { t: 'flush' }
  /** `unwritten`: the parts of the batch whose statement failed, to be written again after a backoff. */
  | { t: 'flushed'; batch: FlushBatch; accepted: Accepted; unwritten?: { batch: FlushBatch; error: unknown } }
  | { t: 'flushFailed'; batch: FlushBatch; error: unknown }
  | { t: 'held' }
  | { t: 'leases'; checked: string[]; renewed: Set<string>; cancelRequested: string[] }
  | { t: 'heartbeatFailed' }
  | { t: 'cancel'; ids: string[] }
  | { t: 'drain'; graceMs: number; done: () => void }
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

interface QueueState {
  concurrency: number;
  /**
   * Claimed by claim_rate_limited, which takes tokens from the queue's buckets in Postgres;
   * `readyAt`: a queue limited as a whole found its bucket full, and is not claimed before then.
   */
  rateLimit?: RateLimitConfig & { tokensLeft: number | null; held: number; readyAt: number; limitedKeys?: number };
  running: number;
  buffer: ClaimedJob[];
  /** Jobs asked for by claims still in flight: the next claim asks only for the rest of the window. */
  claiming: number;
  /**
   * The queue's last claim met execution keys. Such a queue gets no overlapping claim: the second
   * would read the first one's keys as free, and its jobs would meet the first one's running rows
   * in jobs_running_key_idx (measured: keyed throughput fell to a fifth).
   */
  keyed: boolean;
  /** Jobs finished since the rate was last sampled. */
  finished: number;
  sampledAt: number;
  /** Smoothed jobs finished per millisecond: sizes the prefetch. */
  rate: number;
  /** The last idle advert: its free slots (0: none out, or retracted), when it went out, hand-offs received since. */
  advert: { free: number; at: number; handedOff: number };
}

interface Tracked {
  job: ClaimedJob;
  /** Set once a worker runs it; absent while it waits in the prefetch buffer. */
  started: boolean;
  /** Why it was aborted, if it was: decides what its outcome records. */
  abort?: 'cancel' | 'lease' | 'shutdown';
}

interface PendingFailure {
  job: ClaimedJob;
  error: JobError | null;
  cause: unknown;
  retryAt?: Date;
  finalState?: 'failed' | 'cancelled';
  /** A cancel of a job whose attempt never started (it waited in the prefetch): no onCancel, as for a queued job. */
  neverStarted?: boolean;
  /** Its own error was refused by Postgres and replaced with one that says so; refused again, it is dropped. */
  replacedError?: boolean;
  /** Transactions of its continuations that rolled back because one threw (or Postgres refused a row). */
  continuationTries?: number;
  /** Its continuation kept throwing: this failure, which says so, is recorded without it. */
  skipContinuation?: boolean;
}

interface PendingCompletion {
  job: ClaimedJob;
  result: unknown;
  /** The result's JSON text, checked by the worker. */
  json?: string;
  continuationTries?: number;
}

interface FlushBatch {
  completions: PendingCompletion[];
  failures: PendingFailure[];
  releases: ClaimedJob[];
  /** Job id → the latest progress value's JSON text. */
  progress: Map<string, string>;
}

interface Accepted {
  completed: Set<string>;
  failed: Set<string>;
  /** Handed back, but finished as cancelled instead (a cancel was asked while this node held them). */
  cancelled: Set<string>;
  /** Rows Postgres refused (id → why); the rest of their batch was recorded. */
  refused: { completions: Map<string, string>; failures: Map<string, string>; releases: Map<string, string>; progress: Map<string, string> };
  /** Jobs whose continuation kept throwing (id → its error): nothing of theirs was recorded. */
  offending: Map<string, unknown>;
}

/**
 * Transactions a job's continuation may roll back before its batch is split to find the job that
 * throws: a throw that clears (a conflict, a restart) gets these tries with backoff first.
 */
const CONTINUATION_TRIES = 3;

/** A continuation threw: what rolled its transaction back (`cause`) was the continuation's, not the store's. */
class ContinuationThrew extends Error {
  constructor(
    readonly continuation: string,
    override readonly cause: unknown,
  ) {
    super(`continuation ${continuation} threw: ${describeError(cause).message}`);
    this.name = 'ContinuationThrew';
  }
}

const CLAIM_BACKOFF_MIN_MS = 100;
/**
 * Claims one engine keeps in flight. One at a time left Postgres idle between a claim's commit and
 * the next claim's start while the workers drained the buffer: at tens of thousands of jobs a
 * second the claim round trip was the bottleneck. Two overlap that gap; SKIP LOCKED keeps them apart.
 * A throttled engine keeps one, so its pause falls before every claim.
 */
const MAX_CLAIMS_IN_FLIGHT = 2;
/** Rates are sampled no more often than this, so one burst of completions does not swing the prefetch. */
const RATE_SAMPLE_MS = 20;
/**
 * Prefetch = rate × claim round trip × this. A claim starts once a quarter of the window is free,
 * so the buffer must outlast a round trip with room to spare; 4 keeps workers fed while the
 * measured round trip is still settling.
 */
const PREFETCH_ROUND_TRIPS = 4;
const CLAIM_BACKOFF_MAX_MS = 5000;
/** Hand-off ids remembered against repeated messages. */
const RECENT_HANDOFFS = 10_000;
/** An idle queue's advert is repeated this often (clients trust one for IDLE_ADVERT_TTL_MS). */
const ADVERT_REFRESH_MS = 1000;

/**
 * One per partition per node: claims due jobs in batches sized to free capacity plus a small
 * prefetch, starts a Worker per job, and group-commits outcomes. Every Postgres call runs off the
 * mailbox (its result comes back as a message), so the engine never blocks on I/O.
 */
export function engineBehavior(options: EngineOptions): Behavior<EngineMsg, unknown> {
  const { store, settings, partition, nodeId, definitions } = options;
  const log = options.logger;
  /** The claim takes only jobs of these types; others wait for a node that defines them. */
  const types = [...definitions.keys()];
  const queues = new Map<string, QueueState>(
    Object.entries(options.queues).map(([name, q]) => [
      name,
      { concurrency: q.concurrency, ...(q.rateLimit ? { rateLimit: { ...q.rateLimit, tokensLeft: null, held: 0, readyAt: 0 } } : {}), running: 0, buffer: [], claiming: 0, keyed: false, finished: 0, sampledAt: Date.now(), rate: 0, advert: { free: 0, at: 0, handedOff: 0 } },
    ]),
  );
  /** Job type → its continuations (the definition's first, then plugins'); empty: every flush takes the plain path. */
  const continuationsByType = new Map<string, { name: string; run: Continuation }[]>();
  for (const [type, def] of definitions) if (def.continuation) continuationsByType.set(type, [{ name: `${type}.continuation`, run: (tx, jobs) => def.continuation!(tx, jobs) }]);
  for (const c of options.continuations ?? []) {
    for (const type of c.types) continuationsByType.set(type, [...(continuationsByType.get(type) ?? []), { name: c.name, run: c.run }]);
  }
  const tracked = new Map<string, Tracked>();
  /** Ids of the latest hand-offs, oldest first (a Set keeps insertion order). */
  const handedOffIds = new Set<string>();
  let self: ActorRef<EngineMsg, unknown>;
  let workers: SupervisorRef | undefined;
  let ctxRef: ActorContext<EngineMsg, unknown>;

  let claimsInFlight = 0;
  /** A wake-up that arrived while a claim was in flight: claim again after it, whatever it got. */
  let wokenWhileClaiming = false;
  /** The last claim filled what it asked for: there is probably more, claim again as slots free. */
  let more = true;
  let claimBackoffMs = 0;
  let claimRetryAt = 0;
  let processed = 0;

  let pending: FlushBatch = emptyBatch();
  let flushScheduled = false;
  /**
   * The batch being written, one at a time: while it is written the next one grows, so batches
   * size themselves to the load (two side by side measured the same, with more commits). Its jobs
   * still hold leases until the write lands.
   */
  let inflight: FlushBatch | undefined;
  let flushBackoffMs = 0;

  let draining: { done: () => void; deadline: number; forced: boolean } | undefined;
  let paused = new Set<string>();
  let throttleMs = 0;
  let stoppedByThrottle: string[] = [];
  /** No claims until the partition's pause/throttle state is known: a restart must not run a paused queue. */
  let controlKnown = false;
  let lastClaimAt = 0;
  let throttleTimer: (() => void) | undefined;
  /** The poll booked for when a rate-limited queue's bucket has a token again. */
  let rateTimer: { at: number; cancel: () => void } | undefined;
  /** Smoothed claim round trip, ms. */
  let claimRttMs = 0;
  /** A node whose leases are not being renewed must not take more jobs: every one would be rescued. */
  let lastRenewalAt = Date.now();
  let heartbeatFailing = false;
  const renewalStaleMs = 2 * settings.heartbeatMs + 1000;
  const emit = (event: EngineEvent) => {
    if (!options.events) return;
    try {
      options.events(event);
    } catch (err) {
      log.warn({ err: describeError(err).message }, 'job event hook threw');
    }
  };

  function emptyBatch(): FlushBatch {
    return { completions: [], failures: [], releases: [], progress: new Map() };
  }
  const pendingCount = () => pending.completions.length + pending.failures.length + pending.releases.length + pending.progress.size;
  /** Jobs to hold beyond free slots: enough to outlast a few claim round trips at the queue's pace. */
  function prefetchFor(q: QueueState, now: number): number {
    const elapsed = now - q.sampledAt;
    if (elapsed >= RATE_SAMPLE_MS) {
      const sample = q.finished / elapsed;
      q.rate = q.rate === 0 ? sample : (q.rate + sample) / 2;
      q.finished = 0;
      q.sampledAt = now;
    }
    const wanted = Math.floor(q.rate * claimRttMs * PREFETCH_ROUND_TRIPS);
    return Math.min(settings.maxPrefetch, Math.max(settings.prefetch, wanted));
  }

  function leasesRenewing(now: number): boolean {
    if (!heartbeatFailing && now - lastRenewalAt <= renewalStaleMs) return true;
    if (!heartbeatFailing) {
      heartbeatFailing = true;
      log.warn({ sinceMs: now - lastRenewalAt }, 'leases have not been renewed lately; claiming nothing until they are');
    }
    return false;
  }

  function maybeClaim(force = false): void {
    if (claimsInFlight >= (throttleMs > 0 ? 1 : MAX_CLAIMS_IN_FLIGHT) || draining || throttleMs < 0 || !controlKnown) return;
    const now = Date.now();
    if (now < claimRetryAt || !leasesRenewing(now)) return;
    if (throttleMs > 0) {
      const wait = lastClaimAt + throttleMs - now;
      if (wait > 0) {
        throttleTimer ??= ctxRef.sendAfter(wait, { t: 'poll' });
        return;
      }
    }
    const asked = new Map<string, number>();
    let total = 0;
    let idle = false;
    let worth = false;
    for (const [name, q] of queues) {
      if (paused.has(name) || (q.keyed && q.claiming > 0)) continue;
      if (q.rateLimit && now < q.rateLimit.readyAt) continue;
      // A queue declared with concurrency 0 is not run here, so nothing is prefetched for it either.
      // A rate-limited queue claims only what it can start now: a job waiting in the buffer would
      // start late, bunched up with the next window's.
      const window = q.concurrency === 0 ? 0 : q.concurrency + (q.rateLimit ? 0 : prefetchFor(q, now));
      const want = window - q.running - q.buffer.length - q.claiming;
      if (want <= 0) continue;
      asked.set(name, want);
      total += want;
      if (q.running + q.buffer.length + q.claiming === 0) idle = true;
      // Claim in batches: wait until a quarter of the window is free, unless a queue sits idle.
      if (want >= Math.max(1, Math.ceil(window / 4))) worth = true;
    }
    if (total === 0) return;
    if (!force && !more && !idle) return;
    if (!force && !idle && !worth) return;
    claimsInFlight++;
    for (const [name, n] of asked) queues.get(name)!.claiming += n;
    lastClaimAt = now;
    const claimStarted = performance.now();
    // Rate-limited queues are claimed apart, by a claim that takes their tokens.
    claimWithinRateLimits(asked, (unlimited) =>
      store.claimCounted({ nodeId, partition, leaseMs: settings.leaseMs, queues: [...unlimited].map(([queue, limit]) => ({ queue, limit })), types }),
    ).then(
      ({ jobs, found }) => {
        const took = performance.now() - claimStarted;
        claimRttMs = claimRttMs === 0 ? took : 0.8 * claimRttMs + 0.2 * took;
        options.metrics?.claimed(partition, took, jobs.length);
        traceClaim(partition, claimStarted, jobs);
        self.cast({ t: 'claimed', jobs, asked, found });
      },
      (error) => {
        options.metrics?.claimFailed(partition);
        traceClaim(partition, claimStarted, [], error);
        self.cast({ t: 'claimFailed', error, asked });
      },
    );
  }

  /**
   * Runs a claim; rate-limited queues have a claim of their own (claim_rate_limited), which takes
   * their tokens in its own transaction, side by side with the claim of the other queues.
   */
  function claimWithinRateLimits(
    asked: Map<string, number>,
    claim: (unlimited: Map<string, number>) => Promise<{ jobs: ClaimedJob[]; found: Map<string, number> }>,
  ): Promise<{ jobs: ClaimedJob[]; found: Map<string, number> }> {
    const limited: RateLimitedClaimRequest['queues'] = [];
    const rest = new Map<string, number>();
    for (const [queue, want] of asked) {
      const limit = queues.get(queue)?.rateLimit;
      if (limit) limited.push({ queue, limit: want, rateLimit: limit.limit, periodMs: limit.periodMs, ...(limit.key !== undefined ? { keyPath: limit.key } : {}) });
      else rest.set(queue, want);
    }
    if (limited.length === 0) return claim(asked);
    const ofLimited = store.claimRateLimited({ nodeId, partition, leaseMs: settings.leaseMs, queues: limited, types }).then((r) => {
      self.cast({ t: 'rateLimited', limited: r.limited });
      return r;
    });
    if (rest.size === 0) return ofLimited;
    return Promise.allSettled([claim(rest), ofLimited]).then(([m, k]) => {
      // Jobs one side claimed still go to the engine when the other side failed: they are running
      // in Postgres now, and only a 'claimed' message makes this node run (or hand back) them.
      const ok = [m, k].flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const failed = [m, k].find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed && ok.length === 0) throw failed.reason;
      if (failed) log.warn({ err: describeError(failed.reason).message }, 'part of a claim failed; the rest goes ahead');
      return { jobs: ok.flatMap((r) => r.jobs), found: new Map(ok.flatMap((r) => [...r.found])) };
    });
  }

  /**
   * What the limits did in a claim. A queue limited as a whole waits until its bucket has a token;
   * one limited per key keeps claiming for its other keys, and claims again when the first full
   * key has a token.
   */
  function onRateLimited(limited: Map<string, RateLimitOutcome>): void {
    const now = Date.now();
    for (const [queue, outcome] of limited) {
      const limit = queues.get(queue)?.rateLimit;
      if (!limit) continue;
      limit.held = outcome.held;
      limit.limitedKeys = outcome.limitedKeys;
      if (outcome.tokensLeft !== null) limit.tokensLeft = outcome.tokensLeft;
      options.metrics?.rateLimit(partition, queue, limit.key === undefined ? limit.tokensLeft : null, outcome.held, outcome.limitedKeys);
      if (outcome.waitMs === null) {
        limit.readyAt = 0;
        continue;
      }
      // Rounded up: woken a millisecond early, the bucket would still be full.
      const at = now + Math.ceil(Math.max(0, outcome.waitMs)) + 1;
      if (limit.key === undefined) limit.readyAt = at;
      claimAgainAt(at, now);
    }
  }

  function claimAgainAt(at: number, now: number): void {
    if (rateTimer && rateTimer.at <= at) return;
    rateTimer?.cancel();
    rateTimer = { at, cancel: ctxRef.sendAfter(at - now, { t: 'rateReady' }) };
  }

  /** A claim came back (or failed): what it asked for is no longer in flight. */
  function claimEnded(asked: Map<string, number>): void {
    claimsInFlight--;
    for (const [name, n] of asked) {
      const q = queues.get(name);
      if (q) q.claiming -= n;
    }
  }

  function onClaimed(jobs: ClaimedJob[], asked: Map<string, number>, found: Map<string, number>): void {
    claimEnded(asked);
    claimBackoffMs = 0;
    const got = new Map<string, number>();
    const gotKeyed = new Set<string>();
    for (const job of jobs) {
      got.set(job.queue, (got.get(job.queue) ?? 0) + 1);
      if (job.executionKey) gotKeyed.add(job.queue);
      const q = queues.get(job.queue);
      tracked.set(job.id, { job, started: false });
      if (!q || draining) {
        // A queue this engine no longer serves, or a stop began while claiming: hand it back.
        tracked.delete(job.id);
        pending.releases.push(job);
        continue;
      }
      if (job.cancelRequested) {
        // Asked to cancel while it ran elsewhere, then rescued or handed back: it does not run again.
        tracked.delete(job.id);
        pending.failures.push({ job, error: null, cause: new JobCancelledError(job.id), finalState: 'cancelled' });
        continue;
      }
      if (takesDerivedKey(job)) {
        tracked.delete(job.id);
        pending.releases.push(job);
        continue;
      }
      q.buffer.push(job);
    }
    if (pending.releases.length || pending.failures.length) scheduleFlush();
    // Claimable jobs each queue had, up to what was asked (more than claimed: jobs of one key beyond the first).
    const foundIn = (queue: string) => found.get(queue) ?? got.get(queue) ?? 0;
    for (const name of asked.keys()) {
      // Keyed jobs came back, or it found more than it took: jobs of keys beyond the first stayed behind.
      const q = queues.get(name);
      if (q) q.keyed = gotKeyed.has(name) || foundIn(name) > (got.get(name) ?? 0);
    }
    more = wokenWhileClaiming || [...asked].some(([queue, n]) => foundIn(queue) >= n);
    wokenWhileClaiming = false;
    dispatch();
    if (options.idle && !draining && throttleMs === 0) {
      // Idle queues are advertised again when a hand-off used the last advert, their free slots
      // changed, or the last one is getting old; not at every empty claim of a busy engine.
      const now = Date.now();
      const idle: { queue: string; free: number }[] = [];
      for (const [name] of asked) {
        const q = queues.get(name);
        if (!q || q.rateLimit || foundIn(name) > 0) continue;
        const free = q.concurrency - q.running - q.buffer.length;
        if (free <= 0 || (q.advert.handedOff === 0 && q.advert.free === free && now - q.advert.at < ADVERT_REFRESH_MS)) continue;
        q.advert = { free, at: now, handedOff: 0 };
        idle.push({ queue: name, free });
      }
      if (idle.length) options.idle(idle);
    }
    retractAdverts();
    if (more) maybeClaim();
  }

  /**
   * A job handed straight to this engine: it runs here if the queue is served, not paused or
   * throttled, and has a free slot; otherwise it goes back to the queue for a claim to take.
   */
  function onHandoff(job: ClaimedJob): void {
    // A hand-off is taken once: a repeated message must not run the job again after it finished
    // here, or after it went back to the queue and another node claimed it.
    if (tracked.has(job.id) || handedOffIds.has(job.id)) return;
    handedOffIds.add(job.id);
    if (handedOffIds.size > RECENT_HANDOFFS) handedOffIds.delete(handedOffIds.values().next().value!);
    const q = queues.get(job.queue);
    if (q) q.advert.handedOff++;
    // A job with an execution key waits for its turn, which the claim decides. A job of a type
    // this node does not define goes back for a node that does.
    const keyed = takesDerivedKey(job);
    const runnable = !keyed && q !== undefined && definitions.has(job.type) && takesHandoffs(job.queue, q, Date.now());
    options.metrics?.handedOff(partition, job.queue, runnable);
    if (!runnable) {
      pending.releases.push(job);
      scheduleFlush();
      return;
    }
    tracked.set(job.id, { job, started: false });
    q.buffer.push(job);
    dispatch();
    retractAdverts();
  }

  /**
   * Takes back adverts still out for queues that can no longer take a hand-off (full, paused,
   * throttled, stopping, leases not renewing), so clients stop handing this node jobs it would
   * only hand back. An advert whose slots hand-offs used up needs no retraction.
   */
  function retractAdverts(): void {
    if (!options.idle) return;
    const now = Date.now();
    const retract: { queue: string; free: number }[] = [];
    for (const [name, q] of queues) {
      const a = q.advert;
      if (a.free <= a.handedOff || now - a.at > IDLE_ADVERT_TTL_MS || takesHandoffs(name, q, now)) continue;
      a.free = 0;
      retract.push({ queue: name, free: 0 });
    }
    if (retract.length) options.idle(retract);
  }

  /** Whether a job handed to this engine for the queue can run here now: a free slot, nothing stopping it. */
  function takesHandoffs(name: string, q: QueueState, now: number): boolean {
    // A hand-off would start a job without a token: rate-limited queues start jobs through claims only.
    return !draining && controlKnown && throttleMs === 0 && !q.rateLimit && !paused.has(name) && q.running + q.buffer.length < q.concurrency && leasesRenewing(now);
  }

  /**
   * A job stored without an execution key, enqueued by a client without the definitions (the CLI,
   * say), takes the key its definition derives: true when it did. It must then go back to the
   * queue carrying the key, so Postgres holds that key for it like any other.
   */
  function takesDerivedKey(job: ClaimedJob): boolean {
    if (job.executionKey) return false;
    const key = deriveExecutionKey(job);
    if (key === undefined) return false;
    job.executionKey = key;
    return true;
  }

  function deriveExecutionKey(job: ClaimedJob): string | undefined {
    const def = definitions.get(job.type);
    if (!def?.executionKey) return undefined;
    try {
      const key = keyFromRule(def.executionKey, job.payload, { type: job.type, which: 'executionKey' });
      return typeof key === 'string' && key.length > 0 ? key : undefined;
    } catch (err) {
      log.warn({ jobId: job.id, err: describeError(err).message }, 'the execution key of this job cannot be derived from its payload; running the job without a key');
      return undefined;
    }
  }

  function onClaimFailed(error: unknown, asked: Map<string, number>): void {
    claimEnded(asked);
    claimBackoffMs = Math.min(CLAIM_BACKOFF_MAX_MS, Math.max(CLAIM_BACKOFF_MIN_MS, claimBackoffMs * 2));
    claimRetryAt = Date.now() + claimBackoffMs;
    log.warn({ err: describeError(error).message, retryInMs: claimBackoffMs }, 'claim failed; backing off');
    ctxRef.sendAfter(claimBackoffMs, { t: 'poll' });
  }

  function dispatch(): void {
    for (const [, q] of queues) {
      while (q.running < q.concurrency && q.buffer.length > 0 && !draining) {
        if (!start(q, q.buffer.shift()!)) return;
      }
    }
  }

  /** Starts a worker for the job; false when workers cannot start right now (job put back). */
  function start(q: QueueState, job: ClaimedJob): boolean {
    const entry = tracked.get(job.id);
    if (!entry) return true;
    const def = definitions.get(job.type);
    if (!def) {
      // Claims and hand-offs bring only defined types; should one slip through, it goes back to
      // the queue for a node that defines it rather than failing for good.
      tracked.delete(job.id);
      pending.releases.push(job);
      log.warn({ jobId: job.id, type: job.type }, 'no job definition for this type on this node; handing the job back');
      scheduleFlush();
      return true;
    }
    entry.started = true;
    q.running++;
    if (!workers?.alive) workers = ctxRef.system.whereisSupervisor(options.workersName);
    if (!workers) {
      // The worker supervisor is (re)starting: put the job back in front and try again shortly.
      entry.started = false;
      q.running--;
      q.buffer.unshift(job);
      ctxRef.sendAfter(10, { t: 'poll' });
      return false;
    }
    emit({ kind: 'started', job });
    const timeoutMs = job.timeoutMs ?? def.timeoutMs ?? 0;
    workers
      .startChild({
        id: job.id,
        restart: 'temporary',
        shutdownMs: 1000,
        start: () => workerBehavior({ job, definition: def, engine: self, logger: log, timeoutMs }),
      })
      .catch((err: unknown) => self.cast({ t: 'done', job, outcome: { ok: false, error: err, aborted: undefined } }));
    return true;
  }

  function onDone(job: ClaimedJob, outcome: WorkerOutcome): void {
    const entry = tracked.get(job.id);
    if (!entry) return; // already written off (lease lost)
    tracked.delete(job.id);
    const q = queues.get(job.queue);
    if (q && entry.started) {
      q.running--;
      q.finished++;
    }
    processed++;
    if (entry.abort === 'lease') {
      log.warn({ jobId: job.id }, 'dropped the outcome of a job whose lease was lost; another node owns it now');
    } else if (entry.abort === 'shutdown') {
      pending.releases.push(job);
    } else if (outcome.ok) {
      pending.completions.push(outcome.json === undefined ? { job, result: outcome.result } : { job, result: outcome.result, json: outcome.json });
    } else if (entry.abort === 'cancel') {
      pending.failures.push({ job, error: null, cause: new JobCancelledError(job.id), finalState: 'cancelled' });
    } else {
      pending.failures.push(attemptFailed(job, outcome.error));
    }
    scheduleFlush();
    dispatch();
    if (draining) checkDrained();
    else maybeClaim();
  }

  /** The failure record of an attempt that ended in `cause`: retried while attempts remain. */
  function attemptFailed(job: ClaimedJob, cause: unknown): PendingFailure {
    const def = definitions.get(job.type);
    const error = jobError(job, cause);
    return job.attempt < job.maxAttempts && def !== undefined
      ? { job, error, cause, retryAt: new Date(Date.now() + backoffDelay(job.attempt, def.backoff)) }
      : { job, error, cause, finalState: 'failed' };
  }

  function scheduleFlush(): void {
    if (pendingCount() >= settings.flushBatch) {
      flush();
    } else if (!flushScheduled) {
      flushScheduled = true;
      ctxRef.sendAfter(settings.flushMs, { t: 'flush' });
    }
  }

  function flush(): void {
    flushScheduled = false;
    if (inflight || pendingCount() === 0) return;
    const batch = pending;
    inflight = batch;
    pending = emptyBatch();
    const flushStarted = performance.now();
    const flushSize = batch.completions.length + batch.failures.length + batch.releases.length + batch.progress.size;
    const traced = traceComplete(partition, batch.completions, batch.failures);
    // Final outcomes of types with continuations are written in a transaction of their own, with
    // them; the rest of the batch takes the plain statements, as when no type has one.
    const continued = continuationsByType.size === 0 ? undefined : continuedPart(batch);
    const inContinued = continued && new Set<unknown>([...continued.completions, ...continued.failures]);
    const plain = inContinued ? { ...batch, completions: batch.completions.filter((c) => !inContinued.has(c)), failures: batch.failures.filter((f) => !inContinued.has(f)) } : batch;
    const work = Promise.allSettled([
      store.complete(nodeId, completionItems(plain.completions)),
      store.fail(nodeId, failureItems(plain.failures)),
      store.release(nodeId, batch.releases.map((j) => ({ id: j.id, attempt: j.attempt, executionKey: j.executionKey }))),
      store.updateProgress(nodeId, [...batch.progress].map(([id, json]) => ({ id, progress: undefined, json }))),
      continued && writeContinued(continued.completions, continued.failures),
    ]);
    void work.then(([completed, failed, released, progress, continuedWrite]) => {
      if (
        completed.status === 'rejected' &&
        failed.status === 'rejected' &&
        released.status === 'rejected' &&
        progress.status === 'rejected' &&
        (continued === undefined || continuedWrite.status === 'rejected')
      ) {
        if (continued) countContinuationTry(continued, continuedWrite.status === 'rejected' ? continuedWrite.reason : undefined);
        options.metrics?.flushFailed(partition);
        traced?.end(completed.reason);
        self.cast({ t: 'flushFailed', batch, error: completed.reason });
        return;
      }
      // Each statement commits on its own. Only the parts that failed are written again: a part
      // written twice would be refused the second time as if its leases were lost, and its jobs
      // would miss their events and callbacks.
      const none = new Map<string, string>();
      const written = emptyBatch();
      const unwritten = emptyBatch();
      let error: unknown;
      const accepted: Accepted = {
        completed: new Set(),
        failed: new Set(),
        cancelled: new Set(),
        refused: { completions: none, failures: none, releases: none, progress: none },
        offending: new Map(),
      };
      if (completed.status === 'fulfilled') {
        written.completions = plain.completions;
        accepted.completed = completed.value;
        accepted.refused.completions = completed.value.refused;
      } else [unwritten.completions, error] = [plain.completions, completed.reason];
      if (failed.status === 'fulfilled') {
        written.failures = plain.failures;
        accepted.failed = failed.value;
        accepted.refused.failures = failed.value.refused;
      } else [unwritten.failures, error] = [plain.failures, failed.reason];
      if (continued && continuedWrite.status === 'fulfilled' && continuedWrite.value) {
        const { completed: c, failed: f, offending } = continuedWrite.value;
        written.completions = written.completions.concat(continued.completions);
        written.failures = written.failures.concat(continued.failures);
        accepted.completed = new Set([...accepted.completed, ...c]);
        accepted.failed = new Set([...accepted.failed, ...f]);
        accepted.refused.completions = new Map([...accepted.refused.completions, ...c.refused]);
        accepted.refused.failures = new Map([...accepted.refused.failures, ...f.refused]);
        accepted.offending = offending;
      } else if (continued && continuedWrite.status === 'rejected') {
        countContinuationTry(continued, continuedWrite.reason);
        unwritten.completions = unwritten.completions.concat(continued.completions);
        unwritten.failures = unwritten.failures.concat(continued.failures);
        error = continuedWrite.reason;
      }
      if (released.status === 'fulfilled') {
        written.releases = batch.releases;
        accepted.cancelled = released.value.cancelled;
        accepted.refused.releases = released.value.refused;
      } else [unwritten.releases, error] = [batch.releases, released.reason];
      if (progress.status === 'fulfilled') {
        written.progress = batch.progress;
        accepted.refused.progress = progress.value;
      } else [unwritten.progress, error] = [batch.progress, progress.reason];
      if (error === undefined) options.metrics?.flushed(partition, performance.now() - flushStarted, flushSize);
      else options.metrics?.flushFailed(partition);
      traced?.end(error);
      self.cast({ t: 'flushed', batch: written, accepted, ...(error === undefined ? {} : { unwritten: { batch: unwritten, error } }) });
    });
  }

  function completionItems(completions: PendingCompletion[]) {
    return completions.map((c) => ({ id: c.job.id, attempt: c.job.attempt, result: c.result, json: c.json }));
  }

  function failureItems(failures: PendingFailure[]) {
    return failures.map((f) => ({
      id: f.job.id,
      attempt: f.job.attempt,
      error: f.error,
      ...(f.retryAt ? { retryAt: f.retryAt } : {}),
      ...(f.finalState ? { finalState: f.finalState } : {}),
    }));
  }

  /** The batch's final outcomes whose type has a continuation; undefined when there are none. */
  function continuedPart(batch: FlushBatch): { completions: PendingCompletion[]; failures: PendingFailure[] } | undefined {
    const completions = batch.completions.filter((c) => continuationsByType.has(c.job.type));
    const failures = batch.failures.filter((f) => !f.retryAt && !f.skipContinuation && continuationsByType.has(f.job.type));
    return completions.length + failures.length === 0 ? undefined : { completions, failures };
  }

  /** A rollback caused by the jobs themselves (a continuation threw, a row refused) counts toward splitting their batch. */
  function countContinuationTry(part: { completions: PendingCompletion[]; failures: PendingFailure[] }, error: unknown): void {
    if (!(error instanceof ContinuationThrew) && !isRowRefusal(error)) return;
    for (const entry of [...part.completions, ...part.failures]) entry.continuationTries = (entry.continuationTries ?? 0) + 1;
  }

  /**
   * Writes outcomes with their continuations in one transaction. Once a job has rolled back
   * CONTINUATION_TRIES of them, the outcomes are written in halves, each in its own transaction,
   * until each job whose continuation still throws stands alone: those land in `offending`, the
   * others commit (a transaction writes all of its part or nothing, so no outcome is written twice).
   */
  async function writeContinued(
    completions: PendingCompletion[],
    failures: PendingFailure[],
  ): Promise<{ completed: Recorded; failed: Recorded; offending: Map<string, unknown> }> {
    const offending = new Map<string, unknown>();
    const entries: (PendingCompletion | PendingFailure)[] = [...completions, ...failures];
    if (!entries.some((e) => (e.continuationTries ?? 0) >= CONTINUATION_TRIES)) return { ...(await continuedTransaction(completions, failures)), offending };
    const completed = Object.assign(new Set<string>(), { refused: new Map<string, string>() });
    const failed = Object.assign(new Set<string>(), { refused: new Map<string, string>() });
    const isCompletion = new Set<unknown>(completions);
    const write = async (part: (PendingCompletion | PendingFailure)[]): Promise<void> => {
      if (part.length === 0) return;
      try {
        const done = await continuedTransaction(
          part.filter((e): e is PendingCompletion => isCompletion.has(e)),
          part.filter((e): e is PendingFailure => !isCompletion.has(e)),
        );
        for (const id of done.completed) completed.add(id);
        for (const id of done.failed) failed.add(id);
        for (const [id, why] of done.completed.refused) completed.refused.set(id, why);
        for (const [id, why] of done.failed.refused) failed.refused.set(id, why);
      } catch (err) {
        if (!(err instanceof ContinuationThrew) && !isRowRefusal(err)) throw err;
        if (part.length === 1) {
          offending.set(part[0]!.job.id, err);
          return;
        }
        const mid = part.length >>> 1;
        await write(part.slice(0, mid));
        await write(part.slice(mid));
      }
    };
    log.warn({ jobs: entries.length, tries: CONTINUATION_TRIES }, 'a continuation keeps rolling back its batch; writing it in parts to find the jobs it throws for');
    await write(entries);
    return { completed, failed, offending };
  }

  /** Records the outcomes and runs their types' continuations with the accepted ones, in one transaction. */
  function continuedTransaction(completions: PendingCompletion[], failures: PendingFailure[]): Promise<{ completed: Recorded; failed: Recorded }> {
    return store.withTransaction(async (tx) => {
      const completed = await store.complete(nodeId, completionItems(completions), tx);
      const failed = await store.fail(nodeId, failureItems(failures), tx);
      // Only what the store accepted (this node still held the lease) reaches a continuation.
      const byType = new Map<string, FinishedJob[]>();
      const add = (finished: FinishedJob) => {
        const list = byType.get(finished.type);
        if (list) list.push(finished);
        else byType.set(finished.type, [finished]);
      };
      const base = (job: ClaimedJob) => ({ id: job.id, type: job.type, partition, queue: job.queue, payload: job.payload, attempt: job.attempt });
      for (const c of completions) if (completed.has(c.job.id)) add({ ...base(c.job), state: 'completed', result: c.result });
      for (const f of failures) if (failed.has(f.job.id)) add({ ...base(f.job), state: f.finalState ?? 'failed', error: f.error });
      for (const [type, jobs] of byType) {
        for (const c of continuationsByType.get(type) ?? []) {
          try {
            await c.run(tx, jobs);
          } catch (err) {
            throw new ContinuationThrew(c.name, err);
          }
        }
      }
      return { completed, failed };
    });
  }

  function onFlushed(batch: FlushBatch, accepted: Accepted, unwritten?: { batch: FlushBatch; error: unknown }): void {
    if (unwritten) {
      onFlushFailed(unwritten.batch, unwritten.error);
    } else {
      inflight = undefined;
      flushBackoffMs = 0;
    }
    // Counted per queue and outcome, then added once each: one labelled increment per job was a
    // measurable share of the engine's time at tens of thousands of jobs a second.
    const counts = new Map<string, { queue: string; state: FinishedState; n: number }>();
    const count = (queue: string, state: FinishedState) => {
      const key = `${queue}\u0000${state}`;
      const entry = counts.get(key);
      if (entry) entry.n++;
      else counts.set(key, { queue, state, n: 1 });
    };
    const { refused, offending } = accepted;
    for (const c of batch.completions) {
      if (offending.has(c.job.id)) {
        failContinuation(c.job, offending.get(c.job.id), 'failed');
        continue;
      }
      const why = refused.completions.get(c.job.id);
      if (why !== undefined) {
        // The worker's check passed but Postgres would not take it: the attempt fails like one whose
        // result the worker refused, and its batch-mates above were recorded.
        log.error({ jobId: c.job.id, attempt: c.job.attempt, err: why }, 'result refused by Postgres; failing the attempt');
        pending.failures.push(attemptFailed(c.job, new UnstorableResultError(why, 'result')));
        continue;
      }
      if (!accepted.completed.has(c.job.id)) {
        log.warn({ jobId: c.job.id, attempt: c.job.attempt }, 'completion refused: this node no longer holds the job (lease lost); it will run again elsewhere');
        continue;
      }
      emit({ kind: 'completed', job: c.job, result: c.result });
      count(c.job.queue, 'completed');
      const def = definitions.get(c.job.type);
      if (def?.onSuccess) callback(c.job, 'onSuccess', () => def.onSuccess!(c.result, c.job.payload, hookContext(c.job)));
    }
    for (const f of batch.failures) {
      if (offending.has(f.job.id)) {
        failContinuation(f.job, offending.get(f.job.id), f.finalState ?? 'failed');
        continue;
      }
      const why = refused.failures.get(f.job.id);
      if (why !== undefined) {
        if (f.replacedError) {
          // Nothing this node can write will record it: let go, its lease runs out and rescue takes over.
          log.error({ jobId: f.job.id, attempt: f.job.attempt, err: why }, 'Postgres refused to record this failure even with a plain error; dropping it, the job is rescued when its lease expires');
        } else {
          log.error({ jobId: f.job.id, attempt: f.job.attempt, err: why, error: f.error }, 'Postgres refused to record this failure; recording it with an error that says so instead');
          pending.failures.push({ ...f, error: unrecordableError(f, why, nodeId), replacedError: true });
        }
        continue;
      }
      if (!accepted.failed.has(f.job.id)) {
        log.warn({ jobId: f.job.id, attempt: f.job.attempt }, 'failure record refused: this node no longer holds the job (lease lost)');
        continue;
      }
      count(f.job.queue, f.finalState === 'cancelled' ? 'cancelled' : f.retryAt ? 'retrying' : 'failed');
      emit(
        f.finalState === 'cancelled'
          ? { kind: 'cancelled', job: f.job }
          : f.retryAt
            ? { kind: 'retrying', job: f.job, error: f.error, retryAt: f.retryAt }
            : { kind: 'failed', job: f.job, error: f.error },
      );
      const def = definitions.get(f.job.type);
      if (!def) continue;
      if (f.finalState === 'cancelled') {
        if (def.onCancel && !f.neverStarted) callback(f.job, 'onCancel', () => def.onCancel!(f.job.payload, hookContext(f.job)));
      } else if (f.retryAt) {
        if (def.onError) callback(f.job, 'onError', () => def.onError!(f.cause, f.job.payload, hookContext(f.job)));
      } else if (def.onFailed) {
        callback(f.job, 'onFailed', () => def.onFailed!(f.cause, f.job.payload, hookContext(f.job)));
      }
    }
    for (const j of batch.releases) {
      const why = refused.releases.get(j.id);
      if (why !== undefined) {
        log.error({ jobId: j.id, attempt: j.attempt, err: why }, 'Postgres refused to hand this job back; dropping it, the job is rescued when its lease expires');
        continue;
      }
      if (!accepted.cancelled.has(j.id)) {
        count(j.queue, 'released');
        continue;
      }
      // It never ran here: no onCancel, as for a queued job's cancel.
      count(j.queue, 'cancelled');
      emit({ kind: 'cancelled', job: j });
    }
    for (const [id, why] of refused.progress) log.warn({ jobId: id, err: why }, 'progress value refused by Postgres; dropped');
    for (const { queue, state, n } of counts.values()) options.metrics?.finished(partition, queue, state, n);
    // A part that failed waits for its backoff, already scheduled, and so does what queued behind it.
    if (pendingCount() > 0 && !unwritten) scheduleFlush();
    const freed = claimableQueues(batch);
    if (freed.length) options.claimable?.(freed);
    if (draining) {
      if (!unwritten) checkDrained();
    } else if (freed.length) {
      // Handed-back jobs, and jobs the claim skipped for keys that are free in Postgres now.
      more = true;
      maybeClaim();
    }
  }

  /**
   * A job whose continuation kept throwing: its attempt ends with that error, recorded without the
   * continuation, so its batch-mates (committed without it) and later batches are not held up.
   */
  function failContinuation(job: ClaimedJob, err: unknown, finalState: 'failed' | 'cancelled'): void {
    const cause = err instanceof ContinuationThrew ? err.cause : err;
    const message = err instanceof ContinuationThrew ? err.message : `Postgres refused to record its outcome: ${describeError(err).message}`;
    log.error({ jobId: job.id, attempt: job.attempt, err: message }, 'the continuation of this job keeps failing; failing the job without it');
    const error: JobError = { ...jobError(job, cause), message };
    pending.failures.push({ job, error, cause, finalState, skipContinuation: true });
  }

  function onFlushFailed(batch: FlushBatch, error: unknown): void {
    inflight = undefined;
    // Nothing is lost: the outcomes go back in front of whatever arrived since, and are retried.
    pending = {
      completions: [...batch.completions, ...pending.completions],
      failures: [...batch.failures, ...pending.failures],
      releases: [...batch.releases, ...pending.releases],
      progress: new Map([...batch.progress, ...pending.progress]),
    };
    flushBackoffMs = Math.min(CLAIM_BACKOFF_MAX_MS, Math.max(CLAIM_BACKOFF_MIN_MS, flushBackoffMs * 2));
    log.warn({ err: describeError(error).message, retryInMs: flushBackoffMs, waiting: pendingCount() }, 'recording job outcomes failed; will retry');
    if (!flushScheduled) {
      flushScheduled = true;
      ctxRef.sendAfter(flushBackoffMs, { t: 'flush' });
    }
  }

  function callback(job: ClaimedJob, name: string, fn: () => void | Promise<void>): void {
    try {
      Promise.resolve(fn()).catch((err) => log.error({ jobId: job.id, err: describeError(err) }, `${name} callback failed`));
    } catch (err) {
      log.error({ jobId: job.id, err: describeError(err) }, `${name} callback failed`);
    }
  }

  function hookContext(job: ClaimedJob) {
    return {
      id: job.id,
      partition,
      queue: job.queue,
      attempt: job.attempt,
      signal: AbortSignal.abort(),
      logger: log.child({ jobId: job.id }),
      progress: () => undefined,
    };
  }

  function abortJob(id: string, why: 'cancel' | 'lease' | 'shutdown'): void {
    const entry = tracked.get(id);
    if (!entry || entry.abort) return;
    entry.abort = why;
    if (!entry.started) {
      const q = queues.get(entry.job.queue);
      if (q) q.buffer = q.buffer.filter((j) => j.id !== id);
      tracked.delete(id);
      if (why === 'cancel') pending.failures.push({ job: entry.job, error: null, cause: new JobCancelledError(id), finalState: 'cancelled', neverStarted: true });
      else if (why === 'shutdown') pending.releases.push(entry.job);
      scheduleFlush();
      return;
    }
    const reason = why === 'cancel' ? new JobCancelledError(id) : new Error(why === 'lease' ? 'lease lost' : 'node shutting down');
    const ref = workers?.child(id) as ActorRef<WorkerMsg, unknown> | undefined;
    ref?.cast({ t: 'abort', reason });
  }

  function checkDrained(): void {
    if (!draining) return;
    const running = [...queues.values()].reduce((n, q) => n + q.running, 0);
    if (running > 0) {
      if (!draining.forced && Date.now() >= draining.deadline) {
        draining.forced = true;
        log.warn({ running }, 'grace period over; aborting running jobs and handing them back');
        for (const [id, entry] of tracked) if (entry.started) abortJob(id, 'shutdown');
      }
      return;
    }
    if (claimsInFlight > 0 || inflight || pendingCount() > 0) {
      if (pendingCount() > 0) flush();
      return;
    }
    const done = draining.done;
    draining.done = () => undefined;
    done();
  }

  function handleMessage(msg: EngineMsg): unknown {
    switch (msg.t) {
      case 'handoff':
        onHandoff(msg.job);
        return;
      case 'wake':
        more = true;
        if (claimsInFlight > 0) wokenWhileClaiming = true;
        maybeClaim();
        return;
      case 'poll':
        throttleTimer = undefined;
        dispatch();
        maybeClaim(true);
        if (draining) checkDrained();
        return;
      case 'claimed':
        onClaimed(msg.jobs, msg.asked, msg.found);
        if (draining) checkDrained();
        return;
      case 'claimFailed':
        onClaimFailed(msg.error, msg.asked);
        if (draining) checkDrained();
        return;
      case 'rateLimited':
        onRateLimited(msg.limited);
        return;
      case 'rateReady':
        rateTimer = undefined;
        maybeClaim(true);
        return;
      case 'done':
        onDone(msg.job, msg.outcome);
        return;
      case 'progress':
        if (tracked.has(msg.id)) {
          const entry = tracked.get(msg.id)!;
          emit({ kind: 'progress', job: entry.job, progress: msg.value });
          pending.progress.set(msg.id, msg.json);
          scheduleFlush();
        }
        return;
      case 'flush':
        flush();
        return;
      case 'flushed':
        onFlushed(msg.batch, msg.accepted, msg.unwritten);
        return;
      case 'flushFailed':
        onFlushFailed(msg.batch, msg.error);
        return;
      case 'held':
        // Leases to renew: jobs running or prefetched, and finished ones not yet recorded.
        return [pending, inflight].reduce<string[]>(
          (ids, b) => (b ? ids.concat(b.completions.map((c) => c.job.id), b.failures.map((f) => f.job.id), b.releases.map((j) => j.id)) : ids),
          [...tracked.keys()],
        );
      case 'heartbeatFailed':
        if (!heartbeatFailing) log.warn('renewing leases failed; claiming nothing until a renewal succeeds');
        heartbeatFailing = true;
        retractAdverts();
        return;
      case 'leases':
        lastRenewalAt = Date.now();
        if (heartbeatFailing) {
          heartbeatFailing = false;
          log.info('leases are renewed again; claiming resumes');
          ctxRef.self.cast({ t: 'poll' });
        }
        for (const id of msg.checked) {
          if (tracked.has(id) && !msg.renewed.has(id)) {
            log.warn({ jobId: id }, 'lease lost (not renewed); aborting the local run');
            abortJob(id, 'lease');
          }
        }
        for (const id of msg.cancelRequested) abortJob(id, 'cancel');
        return;
      case 'cancel':
        for (const id of msg.ids) abortJob(id, 'cancel');
        return;
      case 'drain':
        if (!draining) {
          draining = { done: msg.done, deadline: Date.now() + msg.graceMs, forced: false };
          for (const [, q] of queues) {
            for (const job of q.buffer) {
              tracked.delete(job.id);
              pending.releases.push(job);
            }
            q.buffer = [];
          }
          ctxRef.sendEvery(Math.max(5, Math.min(100, msg.graceMs / 10)), { t: 'poll' });
          retractAdverts();
          checkDrained();
        }
        return;
      case 'control': {
        const wasStopped = throttleMs < 0 || !controlKnown;
        controlKnown = true;
        const control = effectiveControl(msg.state, nodeId, [...queues.keys()]);
        stoppedByThrottle = stoppedQueues(msg.state, nodeId, [...queues.keys()]);
        if (control.paused) {
          paused = new Set(control.paused);
          // Prefetched jobs of a paused queue go back; only what already runs finishes.
          for (const name of paused) {
            const q = queues.get(name);
            if (!q || q.buffer.length === 0) continue;
            for (const job of q.buffer) {
              tracked.delete(job.id);
              pending.releases.push(job);
            }
            q.buffer = [];
            scheduleFlush();
          }
        }
        if (control.throttleMs !== undefined) throttleMs = control.throttleMs;
        // A lowered throttle takes effect now, not when the old, longer wait would have ended.
        throttleTimer?.();
        throttleTimer = undefined;
        retractAdverts();
        if (wasStopped || throttleMs >= 0) maybeClaim(true);
        return;
      }
      case 'stats': {
        const stats: EngineStats = {
          partition,
          running: 0,
          prefetched: 0,
          queues: {},
          processed,
          draining: draining !== undefined,
          paused: [...paused],
          stopped: stoppedByThrottle,
          throttleMs,
        };
        for (const [name, q] of queues) {
          stats.running += q.running;
          stats.prefetched += q.buffer.length;
          stats.queues[name] = { concurrency: q.concurrency, running: q.running, prefetched: q.buffer.length };
          if (q.rateLimit) {
            const { limit, periodMs, key, tokensLeft, held, limitedKeys } = q.rateLimit;
            stats.queues[name]!.rateLimit = {
              limit,
              periodMs,
              tokensLeft,
              held,
              ...(key !== undefined ? { key } : {}),
              ...(limitedKeys !== undefined ? { limitedKeys } : {}),
            };
          }
        }
        return stats;
      }
    }
  }

  return {
    init(ctx) {
      ctxRef = ctx;
      self = ctx.self;
      ctx.sendEvery(settings.pollMs, { t: 'poll' });
      // Until this answers, the engine claims nothing (its seat also delivers it every few seconds).
      store.loadControl(partition).then(
        (state) => self.cast({ t: 'control', state }),
        (err) => log.warn({ err: describeError(err).message }, 'reading pause/throttle state failed; claims wait for it'),
      );
    },
    handle: handleMessage,
    terminate() {
      // Jobs still tracked here are abandoned to lease expiry: the heartbeat stops renewing them
      // because this engine no longer lists them, and another run picks them up.
      if (tracked.size > 0) log.warn({ jobs: tracked.size }, 'engine stopped with jobs in hand; they will be rescued when their leases expire');
    },
  };
}

/** Queues a recorded batch made jobs claimable in: jobs handed back, and keyed jobs that ended (their key is free). */
function claimableQueues(batch: FlushBatch): string[] {
  const queues = new Set<string>();
  for (const c of batch.completions) if (c.job.executionKey) queues.add(c.job.queue);
  for (const f of batch.failures) if (f.job.executionKey) queues.add(f.job.queue);
  for (const j of batch.releases) queues.add(j.queue);
  return [...queues];
}

/**
 * Stands in for an attempt's error that Postgres refused to store (its text, say): it keeps none of
 * the original's text, which may be what was refused.
 */
function unrecordableError(f: PendingFailure, why: string, nodeId: string): JobError {
  return {
    attempt: f.job.attempt,
    at: new Date().toISOString(),
    // A name is kept only when it is plainly one: anything else may be what Postgres refused.
    name: f.error && /^[A-Za-z_$][\w$]{0,99}$/.test(f.error.name) ? f.error.name : 'Error',
    message: `this attempt's outcome could not be stored as it was (${why}); its error is in the log of node ${nodeId}`,
  };
}

export function jobError(job: ClaimedJob, err: unknown): JobError {
  const d = describeError(err);
  return {
    attempt: job.attempt,
    at: new Date().toISOString(),
    name: d.name,
    message: d.message,
    ...(d.stack ? { stack: d.stack } : {}),
    ...(d.code ? { code: d.code } : {}),
  };
}

