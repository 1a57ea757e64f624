/**
 * The claim window: how many jobs each queue asks for, and when a claim is worth its round trip.
 * Pure bookkeeping, fed the time; the engine runs the claims this plans.
 *
 * A queue's window is its concurrency plus a prefetch. The prefetch follows the queue's pace: jobs
 * finished per ms × claim round trip × PREFETCH_ROUND_TRIPS, between `prefetch` and `maxPrefetch`.
 * What a claim may ask for is the window minus what runs, waits in the buffer or is being claimed.
 */
import type { RateLimitConfig } from '@partita/core';
import type { ClaimedJob, RateLimitOutcome } from '@partita/postgres';
import { nextBackoff } from './backoff.js';

/**
 * Claims one engine keeps in flight. One at a time left Postgres idle between a claim's commit and
 * the next claim's start while the workers drained the buffer: at tens of thousands of jobs a
 * second the claim round trip was the bottleneck. Two overlap that gap; SKIP LOCKED keeps them apart.
 * A throttled engine keeps one, so its pause falls before every claim.
 */
export const MAX_CLAIMS_IN_FLIGHT = 2;
/** Rates are sampled no more often than this, so one burst of completions does not swing the prefetch. */
export const RATE_SAMPLE_MS = 20;
/**
 * Prefetch = rate × claim round trip × this. A claim starts once the buffer is down to half the
 * prefetch (see plan), so the buffer must outlast a round trip with room to spare; 4 keeps workers
 * fed while the measured round trip is still settling.
 */
export const PREFETCH_ROUND_TRIPS = 4;
/**
 * Jobs a queue holds in this engine's hands (running, buffered, being claimed, reserved) may reach
 * what it finishes in this long when a continuation enqueues them here: each one taken is a claim
 * saved, and at its pace it starts within this time (a fraction of a lease, which the heartbeat
 * renews meanwhile).
 */
export const HERE_BACKLOG_MS = 1_000;
/** Weight of the latest claim in the smoothed round trip. */
const RTT_WEIGHT = 0.2;

export interface QueueRateLimit extends RateLimitConfig {
  tokensLeft: number | null;
  held: number;
  /** A queue limited as a whole found its bucket full, and is not claimed before then. */
  readyAt: number;
  limitedKeys?: number;
}

export interface QueueState {
  concurrency: number;
  /** Claimed by claim_rate_limited, which takes tokens from the queue's buckets in Postgres. */
  rateLimit?: QueueRateLimit;
  running: number;
  /** Claimed or handed off, waiting for a slot. */
  buffer: ClaimedJob[];
  /** Jobs asked for by claims still in flight: the next claim asks only for the rest of the window. */
  claiming: number;
  /**
   * Places taken by jobs a transaction of this node is enqueueing into its own hands (see
   * `reserveHere`): they join the buffer when it commits, so no claim asks for their places meanwhile.
   */
  reserved: number;
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
}

export interface WindowSettings {
  prefetch: number;
  maxPrefetch: number;
}

export class ClaimWindow {
  readonly queues: Map<string, QueueState>;
  /**
   * The queues' names and states in the map's order, as arrays: the paths run as every job ends
   * (dispatch, the claim plan) walk these, since iterating the map allocates an iterator (and an
   * entry per queue) per walk. The set of queues never changes after construction.
   */
  readonly names: readonly string[];
  readonly list: readonly QueueState[];
  /** Claims sent and not yet answered. */
  inFlight = 0;
  /** The last claim filled what it asked for: the backlog probably holds more, claim again as slots free. */
  backlogLikely = true;
  /** Smoothed claim round trip, ms (0 until the first claim came back). */
  rttMs = 0;
  lastClaimAt = 0;
  /** A wake-up that arrived while a claim was in flight: claim again after it, whatever it got. */
  private wokenWhileClaiming = false;
  private backoffMs = 0;
  private retryAt = 0;

  constructor(
    queues: Record<string, { concurrency: number; rateLimit?: RateLimitConfig }>,
    private readonly settings: WindowSettings,
    now: number,
  ) {
    this.queues = new Map(
      Object.entries(queues).map(([name, q]) => [
        name,
        {
          concurrency: q.concurrency,
          ...(q.rateLimit ? { rateLimit: { ...q.rateLimit, tokensLeft: null, held: 0, readyAt: 0 } } : {}),
          running: 0,
          buffer: [],
          claiming: 0,
          reserved: 0,
          keyed: false,
          finished: 0,
          sampledAt: now,
          rate: 0,
        },
      ]),
    );
    this.names = [...this.queues.keys()];
    this.list = [...this.queues.values()];
  }

  /** Jobs to hold beyond free slots: enough to outlast a few claim round trips at the queue's pace. */
  prefetchFor(q: QueueState, now: number): number {
    const elapsed = now - q.sampledAt;
    if (elapsed >= RATE_SAMPLE_MS) {
      const sample = q.finished / elapsed;
      q.rate = q.rate === 0 ? sample : (q.rate + sample) / 2;
      q.finished = 0;
      q.sampledAt = now;
    }
    const wanted = Math.floor(q.rate * this.rttMs * PREFETCH_ROUND_TRIPS);
    return Math.min(this.settings.maxPrefetch, Math.max(this.settings.prefetch, wanted));
  }

  /** No further claim may start now: enough are in flight (one while throttled), or a failed one's backoff runs. */
  blocked(now: number, throttled: boolean): boolean {
    return this.inFlight >= (throttled ? 1 : MAX_CLAIMS_IN_FLIGHT) || now < this.retryAt;
  }

  /**
   * What a claim should ask for now, per queue; undefined when no claim is worth it. Claims go out
   * in batches (once a quarter of a window is free and no more than half the prefetch is buffered
   * or being claimed) unless a queue sits idle; `force` (the poll)
   * claims whatever is free, and without `backlogLikely` only an idle queue is claimed for.
   */
  plan(now: number, paused: ReadonlySet<string>, force: boolean): Map<string, number> | undefined {
    // Decided first, the map made only for a claim that goes out: this runs as every job ends,
    // and most of those calls claim nothing.
    let total = 0;
    let idle = false;
    let worthARoundTrip = false;
    const { names, list } = this;
    for (let i = 0; i < list.length; i++) {
      const q = list[i]!;
      const window = this.windowOf(names[i]!, q, now, paused);
      const want = window - q.running - q.buffer.length - q.claiming - q.reserved;
      if (want <= 0) continue;
      total += want;
      if (q.running + q.buffer.length + q.claiming + q.reserved === 0) idle = true;
      // Every claim costs Postgres 0.25-0.4 ms of CPU however many jobs it takes (starting its
      // plan, reaching the queue's first live entry, its commit), so a claim waits until its queue has drawn what it holds beyond
      // its running jobs down to half its prefetch: two round trips of work at its pace still on
      // hand, and claims twice the size of the quarter window's alone (~550 jobs instead of
      // ~280 in the bench's 20,000-job drain: 50-60 claims instead of 70-90).
      const ahead = q.buffer.length + q.claiming + q.reserved;
      if (want >= Math.max(1, Math.ceil(window / 4)) && (q.rateLimit !== undefined || ahead <= (window - q.concurrency) / 2))
        worthARoundTrip = true;
    }
    if (total === 0) return undefined;
    if (!force && !this.backlogLikely && !idle) return undefined;
    if (!force && !idle && !worthARoundTrip) return undefined;
    const asked = new Map<string, number>();
    for (let i = 0; i < list.length; i++) {
      const q = list[i]!;
      // The same windows as above: the rate was sampled at `now` there, so it is not sampled again.
      const want = this.windowOf(names[i]!, q, now, paused) - q.running - q.buffer.length - q.claiming - q.reserved;
      if (want > 0) asked.set(names[i]!, want);
    }
    return asked;
  }

  /** A queue's claim window now (jobs it may hold); 0 for a queue not claimed now (paused, keyed with a claim out, rate-limited and waiting). */
  private windowOf(name: string, q: QueueState, now: number, paused: ReadonlySet<string>): number {
    if (paused.has(name) || (q.keyed && q.claiming > 0)) return 0;
    if (q.rateLimit && now < q.rateLimit.readyAt) return 0;
    // A queue declared with concurrency 0 is not run here, so nothing is prefetched for it either.
    // A rate-limited queue claims only what it can start now: a job waiting in the buffer would
    // start late, bunched up with the next window's.
    return q.concurrency === 0 ? 0 : q.concurrency + (q.rateLimit ? 0 : this.prefetchFor(q, now));
  }

  /**
   * Takes a place for a job enqueued straight into this engine's hands. Such a job costs Postgres a
   * third of a claimed one (one insert, no queued row to find and update), so it may take a place
   * beyond the claim window: up to one more concurrency's worth, or as many as the queue finishes in
   * HERE_BACKLOG_MS at its pace when that is more. The claims then ask for that much less until the
   * buffer drains, rather than racing it for the same places. Bounded by the window alone, a
   * continuation's batch (~1,250 follow-ups of a fast queue) found the places taken by the claims in
   * flight and by its own first few hundred, and sent the rest through a claim each. A rate-limited
   * queue never: its starts take tokens, and only its claim takes them.
   */
  reserveHere(name: string, now: number): boolean {
    const q = this.queues.get(name);
    if (!q || q.concurrency === 0 || q.rateLimit) return false;
    const limit = Math.max(2 * q.concurrency + this.prefetchFor(q, now), Math.floor(q.rate * HERE_BACKLOG_MS));
    if (q.running + q.buffer.length + q.claiming + q.reserved >= limit) return false;
    q.reserved++;
    return true;
  }

  /** Reserved places given back: their jobs joined the buffer, or their transaction rolled back. */
  unreserve(name: string, n = 1): void {
    const q = this.queues.get(name);
    if (q) q.reserved = Math.max(0, q.reserved - n);
  }

  /** A claim for `asked` went out. */
  started(asked: Map<string, number>, now: number): void {
    this.inFlight++;
    for (const [name, n] of asked) this.queues.get(name)!.claiming += n;
    this.lastClaimAt = now;
  }

  /** A claim's round trip, measured: smoothed into the prefetch's sizing. */
  measured(rttMs: number): void {
    this.rttMs = this.rttMs === 0 ? rttMs : (1 - RTT_WEIGHT) * this.rttMs + RTT_WEIGHT * rttMs;
  }

  /** Something may be claimable now (a wake-up): assume a backlog, also after a claim in flight comes back empty. */
  woken(): void {
    this.backlogLikely = true;
    if (this.inFlight > 0) this.wokenWhileClaiming = true;
  }

  /**
   * A claim came back. `got`: jobs it took per queue; `gotKeyed`: queues it took keyed jobs of;
   * `found`: claimable jobs per queue up to what was asked (more than taken when jobs of one key
   * beyond the first stayed behind).
   */
  claimed(asked: Map<string, number>, got: Map<string, number>, gotKeyed: Set<string>, found: Map<string, number>): void {
    this.ended(asked);
    this.backoffMs = 0;
    for (const name of asked.keys()) {
      const q = this.queues.get(name);
      if (q) q.keyed = gotKeyed.has(name) || foundIn(name, found, got) > (got.get(name) ?? 0);
    }
    this.backlogLikely = this.wokenWhileClaiming || [...asked].some(([queue, n]) => foundIn(queue, found, got) >= n);
    this.wokenWhileClaiming = false;
  }

  /** A claim failed: no claim before the returned backoff (ms) has passed. */
  failed(asked: Map<string, number>, now: number): number {
    this.ended(asked);
    this.backoffMs = nextBackoff(this.backoffMs);
    this.retryAt = now + this.backoffMs;
    return this.backoffMs;
  }

  /**
   * What the rate limits did in a claim. A queue limited as a whole waits until its bucket has a
   * token; one limited per key keeps claiming for its other keys. Returns when to claim again (the
   * earliest bucket with a token again), or undefined.
   */
  rateLimited(limited: Map<string, RateLimitOutcome>, now: number): number | undefined {
    let claimAgainAt: number | undefined;
    for (const [queue, outcome] of limited) {
      const limit = this.queues.get(queue)?.rateLimit;
      if (!limit) continue;
      limit.held = outcome.held;
      limit.limitedKeys = outcome.limitedKeys;
      if (outcome.tokensLeft !== null) limit.tokensLeft = outcome.tokensLeft;
      if (outcome.waitMs === null) {
        limit.readyAt = 0;
        continue;
      }
      // Rounded up: woken a millisecond early, the bucket would still be full.
      const at = now + Math.ceil(Math.max(0, outcome.waitMs)) + 1;
      if (limit.key === undefined) limit.readyAt = at;
      if (claimAgainAt === undefined || at < claimAgainAt) claimAgainAt = at;
    }
    return claimAgainAt;
  }

  /** Free slots of a queue not counting the buffer's jobs as free. */
  static free(q: QueueState): number {
    return q.concurrency - q.running - q.buffer.length - q.reserved;
  }

  private ended(asked: Map<string, number>): void {
    this.inFlight--;
    for (const [name, n] of asked) {
      const q = this.queues.get(name);
      if (q) q.claiming -= n;
    }
  }
}

/** Claimable jobs a queue had, up to what was asked: `found` when the claim reported it, else what it took. */
export function foundIn(queue: string, found: Map<string, number>, got: Map<string, number>): number {
  return found.get(queue) ?? got.get(queue) ?? 0;
}
