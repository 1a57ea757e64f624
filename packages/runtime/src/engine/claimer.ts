/**
 * Runs a claim the window planned. Rate-limited queues have a claim of their own
 * (claim_rate_limited), which takes their tokens in its own transaction, side by side with the
 * claim of the other queues.
 */
import { describeError, traceClaim, type Logger } from '@partita/core';
import type { ClaimedJob, RateLimitOutcome, RateLimitedClaimRequest } from '@partita/postgres';
import type { Metrics } from '../metrics.js';
import type { EngineMsg } from './messages.js';
import type { EngineStore } from './types.js';
import type { ClaimWindow, QueueState } from './window.js';

export interface ClaimRequest {
  nodeId: string;
  partition: string;
  leaseMs: number;
  /** The claim takes only jobs of these types; others wait for a node that defines them. */
  types: string[];
  /** Marked jobs are taken only for these continuations; others wait for a node that runs theirs. */
  continuations: readonly string[];
}

export type ClaimResult = { jobs: ClaimedJob[]; found: Map<string, number> };

/**
 * Claims what `asked` says for the window's queues; the result comes back as a 'claimed' message
 * (after a 'rateLimited' one when rate-limited queues were claimed) or a 'claimFailed' one. The
 * round trip is measured into the window, which sizes the prefetch by it.
 */
export class Claimer {
  private readonly rateLimited = (limited: Map<string, RateLimitOutcome>) => this.o.reply({ t: 'rateLimited', limited });

  constructor(
    private readonly o: {
      store: EngineStore;
      request: ClaimRequest;
      window: ClaimWindow;
      log: Logger;
      metrics?: Metrics;
      reply: (msg: EngineMsg) => void;
    },
  ) {}

  claim(asked: Map<string, number>): void {
    const { window, metrics, reply } = this.o;
    const { partition } = this.o.request;
    const claimStarted = performance.now();
    claimJobs(this.o.store, this.o.request, asked, window.queues, this.rateLimited, this.o.log).then(
      ({ jobs, found }) => {
        const took = performance.now() - claimStarted;
        window.measured(took);
        metrics?.claimed(partition, took, jobs.length);
        traceClaim(partition, claimStarted, jobs);
        reply({ t: 'claimed', jobs, asked, found });
      },
      (error) => {
        metrics?.claimFailed(partition);
        traceClaim(partition, claimStarted, [], error);
        reply({ t: 'claimFailed', error, asked });
      },
    );
  }
}

export function claimJobs(
  store: EngineStore,
  req: ClaimRequest,
  asked: Map<string, number>,
  queues: ReadonlyMap<string, QueueState>,
  /** What the limits did, told before the claim's result. */
  rateLimited: (limited: Map<string, RateLimitOutcome>) => void,
  log: Logger,
): Promise<ClaimResult> {
  const { nodeId, partition, leaseMs, types, continuations } = req;
  const claim = (unlimited: Map<string, number>) =>
    store.claimCounted({
      nodeId,
      partition,
      leaseMs,
      queues: [...unlimited].map(([queue, limit]) => ({ queue, limit })),
      types,
      continuations,
    });
  const limited: RateLimitedClaimRequest['queues'] = [];
  const rest = new Map<string, number>();
  for (const [queue, want] of asked) {
    const limit = queues.get(queue)?.rateLimit;
    if (limit)
      limited.push({
        queue,
        limit: want,
        rateLimit: limit.limit,
        periodMs: limit.periodMs,
        ...(limit.key !== undefined ? { keyPath: limit.key } : {}),
      });
    else rest.set(queue, want);
  }
  if (limited.length === 0) return claim(asked);
  const ofLimited = store.claimRateLimited({ nodeId, partition, leaseMs, queues: limited, types, continuations }).then((r) => {
    rateLimited(r.limited);
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
