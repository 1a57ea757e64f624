/** EngineStats from the claim window, and outcome counts added to the metrics once per queue and state. */
import test from 'ava';
import type { Metrics } from '../src/metrics.js';
import { FinishedCounts, engineStats } from '../src/engine/stats.js';
import { ClaimWindow } from '../src/engine/window.js';
import { FakeClock, job } from './engine/fixtures.js';

test('stats add up running and prefetched jobs per queue, with what the rate limits last said', (t) => {
  const clock = new FakeClock();
  const w = new ClaimWindow(
    { a: { concurrency: 3 }, b: { concurrency: 2, rateLimit: { limit: 5, periodMs: 1000, key: 'tenant' } } },
    { prefetch: 1, maxPrefetch: 5 },
    clock.now,
  );
  w.queues.get('a')!.running = 2;
  w.queues.get('a')!.buffer.push(job(), job());
  w.queues.get('b')!.running = 1;
  w.rateLimited(new Map([['b', { limitedKeys: 2, waitMs: 10, tokensLeft: null, held: 4 }]]), clock.now);
  const stats = engineStats(w.queues, {
    partition: 'p',
    processed: 7,
    draining: false,
    paused: new Set(['a']),
    stopped: [],
    held: new Set(['b']),
    throttleMs: 0,
  });
  t.deepEqual(stats, {
    partition: 'p',
    running: 3,
    prefetched: 2,
    processed: 7,
    draining: false,
    paused: ['a'],
    stopped: [],
    held: ['b'],
    throttleMs: 0,
    queues: {
      a: { concurrency: 3, running: 2, prefetched: 2 },
      b: {
        concurrency: 2,
        running: 1,
        prefetched: 0,
        rateLimit: { limit: 5, periodMs: 1000, key: 'tenant', tokensLeft: null, held: 4, limitedKeys: 2 },
      },
    },
  });
});

test('outcomes are counted per queue and state and reported once each', (t) => {
  const reported: unknown[][] = [];
  const metrics = { finished: (...args: unknown[]) => void reported.push(args) } as unknown as Metrics;
  const counts = new FinishedCounts();
  counts.count('a', 'completed');
  counts.count('a', 'completed');
  counts.count('b', 'completed');
  counts.count('a', 'failed');
  t.is(counts.get('a', 'completed'), 2);
  t.is(counts.get('a', 'retrying'), 0);
  counts.report('p', metrics);
  // Grouped by queue; the order of the increments is not part of it.
  t.deepEqual(reported, [
    ['p', 'a', 'completed', 2],
    ['p', 'a', 'failed', 1],
    ['p', 'b', 'completed', 1],
  ]);
  counts.report('p', undefined);
});
