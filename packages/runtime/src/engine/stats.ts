import type { FinishedState, Metrics } from '../metrics.js';
import type { EngineStats } from './messages.js';
import type { QueueState } from './window.js';

/** The engine as `stats` reports it: its queues' windows and the controls in force. */
export function engineStats(
  queues: ReadonlyMap<string, QueueState>,
  s: {
    partition: string;
    processed: number;
    draining: boolean;
    paused: ReadonlySet<string>;
    stopped: string[];
    held: ReadonlySet<string>;
    throttleMs: number;
  },
): EngineStats {
  const stats: EngineStats = {
    partition: s.partition,
    running: 0,
    prefetched: 0,
    queues: {},
    processed: s.processed,
    draining: s.draining,
    paused: [...s.paused],
    stopped: s.stopped,
    held: [...s.held],
    throttleMs: s.throttleMs,
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

/**
 * Outcomes of one recorded batch, counted per queue and state and then added to the metrics once
 * each: one labelled increment per job was a measurable share of the engine's time at tens of
 * thousands of jobs a second.
 */
export class FinishedCounts {
  // Queue → state → n: a key string per job (queue and state joined) was the batch's largest allocation here.
  private readonly counts = new Map<string, Map<FinishedState, number>>();

  count(queue: string, state: FinishedState): void {
    let byState = this.counts.get(queue);
    if (byState === undefined) this.counts.set(queue, (byState = new Map()));
    byState.set(state, (byState.get(state) ?? 0) + 1);
  }

  report(partition: string, metrics: Metrics | undefined): void {
    if (metrics) for (const [queue, byState] of this.counts) for (const [state, n] of byState) metrics.finished(partition, queue, state, n);
  }

  /** Counted so far, for tests and logs: queue → state → n. */
  get(queue: string, state: FinishedState): number {
    return this.counts.get(queue)?.get(state) ?? 0;
  }
}
