/** The claim window: what a claim asks for per queue, prefetch sizing, and when a claim is worth it. */
import test from 'ava';
import { ClaimWindow, HERE_BACKLOG_MS, MAX_CLAIMS_IN_FLIGHT, RATE_SAMPLE_MS } from '../src/engine/window.js';
import { FakeClock, job } from './engine/fixtures.js';

const settings = { prefetch: 2, maxPrefetch: 50 };
const none = new Set<string>();

function windowOf(
  queues: Record<string, { concurrency: number; rateLimit?: { limit: number; periodMs: number; key?: string } }>,
  clock = new FakeClock(),
) {
  return { clock, w: new ClaimWindow(queues, settings, clock.now) };
}

/** Marks `n` jobs of the queue as running (as dispatch would). */
function run(w: ClaimWindow, queue: string, n: number): void {
  w.queues.get(queue)!.running += n;
}

/** Ends `n` running jobs of the queue (as onDone does). */
function finish(w: ClaimWindow, queue: string, n: number): void {
  const q = w.queues.get(queue)!;
  q.running -= n;
  q.finished += n;
}

test('an idle queue asks for its concurrency plus the minimum prefetch', (t) => {
  const { clock, w } = windowOf({ a: { concurrency: 10 }, b: { concurrency: 3 } });
  t.deepEqual(
    [...w.plan(clock.now, none, false)!],
    [
      ['a', 12],
      ['b', 5],
    ],
  );
});

test('a queue of concurrency 0 asks for nothing, a paused queue is skipped', (t) => {
  const { clock, w } = windowOf({ zero: { concurrency: 0 }, paused: { concurrency: 4 }, open: { concurrency: 1 } });
  t.deepEqual([...w.plan(clock.now, new Set(['paused']), false)!], [['open', 3]]);
  t.is(w.plan(clock.now, new Set(['paused', 'open']), true), undefined);
});

test('jobs running, buffered or being claimed come off what the next claim asks for', (t) => {
  const { clock, w } = windowOf({ q: { concurrency: 10 } });
  const asked = w.plan(clock.now, none, false)!;
  w.started(asked, clock.now);
  t.is(w.inFlight, 1);
  t.is(w.queues.get('q')!.claiming, 12);
  // The whole window is being claimed: a second claim has nothing to ask for, even forced.
  t.is(w.plan(clock.now, none, true), undefined);
  w.claimed(asked, new Map([['q', 12]]), new Set(), new Map([['q', 12]]));
  t.is(w.inFlight, 0);
  const q = w.queues.get('q')!;
  q.buffer.push(job(), job());
  run(w, 'q', 10);
  t.is(w.plan(clock.now, none, true), undefined);
  finish(w, 'q', 4);
  t.deepEqual([...w.plan(clock.now, none, true)!], [['q', 4]]);
});

test('a busy queue claims in batches: not until a quarter of its window is free, unless the poll forces it', (t) => {
  const { clock, w } = windowOf({ q: { concurrency: 20 } });
  run(w, 'q', 20);
  // Window 22, 2 free: less than a quarter (6).
  t.is(w.plan(clock.now, none, false), undefined);
  t.deepEqual([...w.plan(clock.now, none, true)!], [['q', 2]]);
  finish(w, 'q', 4);
  t.deepEqual([...w.plan(clock.now, none, false)!], [['q', 6]]);
});

test('a busy queue with a deep buffer claims once half its prefetch is left on hand, not at a quarter of its window', (t) => {
  const clock = new FakeClock();
  // Window 4 + 40: a quarter is 11 free, half the prefetch 20 jobs buffered or being claimed.
  const w = new ClaimWindow({ q: { concurrency: 4 } }, { prefetch: 40, maxPrefetch: 50 }, clock.now);
  const q = w.queues.get('q')!;
  run(w, 'q', 4);
  for (let i = 0; i < 29; i++) q.buffer.push(job());
  // 11 free, 29 on hand: a claim of 11 would go while two round trips' worth are still buffered.
  t.is(w.plan(clock.now, none, false), undefined);
  q.buffer.splice(0, 8);
  t.is(w.plan(clock.now, none, false), undefined, '19 free, 21 on hand');
  q.buffer.splice(0, 1);
  t.deepEqual([...w.plan(clock.now, none, false)!], [['q', 20]]);
  // A claim in flight counts as on hand: no second claim until the buffer drains again.
  w.started(new Map([['q', 20]]), clock.now);
  q.buffer.splice(0, 12);
  t.is(w.plan(clock.now, none, false), undefined, '12 free, 28 on hand');
  // The poll still claims whatever is free.
  t.deepEqual([...w.plan(clock.now, none, true)!], [['q', 12]]);
});

test('without a likely backlog, only an idle queue or the poll starts a claim', (t) => {
  const { clock, w } = windowOf({ busy: { concurrency: 4 }, idle: { concurrency: 4 } });
  const asked = w.plan(clock.now, none, false)!;
  w.started(asked, clock.now);
  // Found less than asked: the backlog is probably empty.
  w.claimed(asked, new Map([['busy', 1]]), new Set(), new Map([['busy', 1]]));
  t.false(w.backlogLikely);
  run(w, 'busy', 1);
  run(w, 'idle', 1);
  t.is(w.plan(clock.now, none, false), undefined, 'both queues run something and the backlog is empty');
  t.truthy(w.plan(clock.now, none, true));
  finish(w, 'idle', 1);
  t.deepEqual(
    [...w.plan(clock.now, none, false)!],
    [
      ['busy', 5],
      ['idle', 6],
    ],
  );
});

test('a claim that filled what it asked for, or a wake-up during a claim, keeps the backlog likely', (t) => {
  const { clock, w } = windowOf({ q: { concurrency: 2 } });
  let asked = w.plan(clock.now, none, false)!;
  w.started(asked, clock.now);
  w.claimed(asked, new Map([['q', 4]]), new Set(), new Map([['q', 4]]));
  t.true(w.backlogLikely);

  asked = new Map([['q', 4]]);
  w.started(asked, clock.now);
  w.woken();
  w.claimed(asked, new Map(), new Set(), new Map());
  t.true(w.backlogLikely, 'woken while the claim was in flight: what it found says nothing of the wake-up');

  asked = new Map([['q', 4]]);
  w.started(asked, clock.now);
  w.claimed(asked, new Map(), new Set(), new Map());
  t.false(w.backlogLikely);
});

test('a keyed queue gets no overlapping claim', (t) => {
  const { clock, w } = windowOf({ k: { concurrency: 10 } });
  let asked = w.plan(clock.now, none, false)!;
  w.started(asked, clock.now);
  // Found 12 claimable but took 3 (jobs of one key beyond the first stayed behind).
  w.claimed(asked, new Map([['k', 3]]), new Set(), new Map([['k', 12]]));
  t.true(w.queues.get('k')!.keyed);
  run(w, 'k', 3);
  asked = w.plan(clock.now, none, true)!;
  w.started(asked, clock.now);
  t.is(w.plan(clock.now, none, true), undefined, 'its claim is in flight');
  w.claimed(asked, new Map([['k', 2]]), new Set(), new Map([['k', 2]]));
  t.false(w.queues.get('k')!.keyed, 'took all it found, none keyed');
  const kept = new Map([['k', 1]]);
  w.started(kept, clock.now);
  w.claimed(kept, new Map([['k', 1]]), new Set(['k']), new Map([['k', 1]]));
  t.true(w.queues.get('k')!.keyed, 'took a keyed job');
});

test(`${MAX_CLAIMS_IN_FLIGHT} claims may be in flight, one while throttled`, (t) => {
  const { clock, w } = windowOf({ q: { concurrency: 100 } });
  t.false(w.blocked(clock.now, false));
  w.started(new Map([['q', 10]]), clock.now);
  t.false(w.blocked(clock.now, false));
  t.true(w.blocked(clock.now, true));
  w.started(new Map([['q', 10]]), clock.now);
  t.true(w.blocked(clock.now, false));
});

test('failed claims back off, doubling from 100 ms to 5 s; a claim that comes back resets it', (t) => {
  const { clock, w } = windowOf({ q: { concurrency: 1 } });
  const waits: number[] = [];
  for (let i = 0; i < 8; i++) {
    const asked = new Map([['q', 1]]);
    w.started(asked, clock.now);
    waits.push(w.failed(asked, clock.now));
  }
  t.deepEqual(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  t.is(w.queues.get('q')!.claiming, 0, 'what the failed claims asked for is no longer in flight');
  t.true(w.blocked(clock.advance(4999), false));
  t.false(w.blocked(clock.advance(1), false));
  const asked = new Map([['q', 1]]);
  w.started(asked, clock.now);
  w.claimed(asked, new Map(), new Set(), new Map());
  w.started(asked, clock.now);
  t.is(w.failed(asked, clock.now), 100);
});

test('the prefetch grows with a burst of completions and the round trip, up to maxPrefetch, and falls back when idle', (t) => {
  const { clock, w } = windowOf({ q: { concurrency: 10 } });
  const q = w.queues.get('q')!;
  t.is(w.prefetchFor(q, clock.now), 2, 'no rate yet: the minimum');
  w.measured(10);
  t.is(w.rttMs, 10);
  // 100 jobs in 50 ms: 2 jobs/ms × 10 ms × 4 round trips = 80, capped at 50.
  q.finished = 100;
  t.is(w.prefetchFor(q, clock.advance(50)), 50);
  t.is(q.rate, 2);
  // A slower pace halves toward the new sample: (2 + 0.2) / 2 = 1.1 jobs/ms → 44.
  q.finished = 10;
  t.is(w.prefetchFor(q, clock.advance(50)), 44);
  // Idle: the rate decays sample by sample until the minimum holds again.
  let prefetch = 0;
  for (let i = 0; i < 10; i++) prefetch = w.prefetchFor(q, clock.advance(100));
  t.is(prefetch, 2);
});

/** Places reserveHere gives before it refuses (each reserved place stays taken). */
function reservable(w: ClaimWindow, queue: string, now: number): number {
  let n = 0;
  while (w.reserveHere(queue, now)) n++;
  return n;
}

test('a slow queue takes into its hands up to one concurrency beyond its window', (t) => {
  const { clock, w } = windowOf({ q: { concurrency: 10 } });
  const q = w.queues.get('q')!;
  q.claiming = 12;
  run(w, 'q', 10);
  // Window 10 + 2; what it holds (running, buffered, claiming, reserved) may reach 2 × 10 + 2 = 22.
  t.is(reservable(w, 'q', clock.now), 0, 'running and claiming fill the limit');
  finish(w, 'q', 10);
  t.is(reservable(w, 'q', clock.advance(1_000)), 10);
  t.is(q.reserved, 10);
  w.unreserve('q', 4);
  t.is(q.reserved, 6);
});

test(`a fast queue takes into its hands what it finishes in ${HERE_BACKLOG_MS} ms, though claims in flight fill its window`, (t) => {
  // A continuation's batch of a fast queue (~1,250 follow-ups of no-op steps) met a limit of
  // 2 × concurrency + prefetch, mostly taken by the claims in flight: most follow-ups went through a claim.
  const { clock, w } = windowOf({ q: { concurrency: 10 } });
  const q = w.queues.get('q')!;
  w.measured(10);
  // 4 jobs/ms: prefetch capped at 50, window 60, here-limit max(70, 4,000).
  q.finished = 200;
  w.prefetchFor(q, clock.advance(50));
  t.is(q.rate, 4);
  q.claiming = 60;
  t.is(reservable(w, 'q', clock.now), 4 * HERE_BACKLOG_MS - 60);
  t.is(w.plan(clock.now, none, true), undefined, 'the claims ask for nothing while they are held');
});

test(`rates are not sampled more often than every ${RATE_SAMPLE_MS} ms`, (t) => {
  const { clock, w } = windowOf({ q: { concurrency: 10 } });
  const q = w.queues.get('q')!;
  w.measured(10);
  q.finished = 5;
  w.prefetchFor(q, clock.advance(RATE_SAMPLE_MS - 1));
  t.is(q.rate, 0);
  t.is(q.finished, 5, 'the burst is kept for the next sample');
  w.prefetchFor(q, clock.advance(1));
  t.is(q.rate, 5 / RATE_SAMPLE_MS);
  t.is(q.finished, 0);
});

test('the round trip is smoothed: the latest claim weighs a fifth', (t) => {
  const { w } = windowOf({ q: { concurrency: 1 } });
  w.measured(10);
  w.measured(20);
  t.is(w.rttMs, 12);
});

test('a rate-limited queue asks only for what it can start, and waits for its bucket when limited as a whole', (t) => {
  const { clock, w } = windowOf({
    whole: { concurrency: 5, rateLimit: { limit: 10, periodMs: 1000 } },
    keyed: { concurrency: 5, rateLimit: { limit: 1, periodMs: 1000, key: 'tenant' } },
  });
  t.deepEqual(
    [...w.plan(clock.now, none, false)!],
    [
      ['whole', 5],
      ['keyed', 5],
    ],
  );
  const at = w.rateLimited(
    new Map([
      ['whole', { limitedKeys: 1, waitMs: 250.2, tokensLeft: 0, held: 5 }],
      ['keyed', { limitedKeys: 3, waitMs: 100, tokensLeft: null, held: 2 }],
    ]),
    clock.now,
  );
  t.is(at, clock.now + 101, 'the earliest bucket with a token, a millisecond late rather than early');
  const whole = w.queues.get('whole')!.rateLimit!;
  t.is(whole.readyAt, clock.now + 252);
  t.is(whole.tokensLeft, 0);
  t.is(whole.held, 5);
  t.is(w.queues.get('keyed')!.rateLimit!.readyAt, 0, 'limited per key: its other keys are still claimed');
  t.is(w.queues.get('keyed')!.rateLimit!.tokensLeft, null);
  t.deepEqual([...w.plan(clock.advance(251), none, false)!], [['keyed', 5]]);
  t.deepEqual(
    [...w.plan(clock.advance(1), none, false)!],
    [
      ['whole', 5],
      ['keyed', 5],
    ],
  );
  t.is(w.rateLimited(new Map([['whole', { limitedKeys: 0, waitMs: null, tokensLeft: 9, held: 0 }]]), clock.now), undefined);
  t.is(whole.readyAt, 0);
  t.is(whole.tokensLeft, 9);
});
