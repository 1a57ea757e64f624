import test from 'ava';
import fc from 'fast-check';
import {
  ActorCrashedError,
  ActorStoppedError,
  createSystem,
  SupervisorGaveUpError,
  type ActorRef,
  type SupervisorRef,
} from '@partita/actors';
import { guardProcess, sleep, tick, waitFor } from './helpers.js';

guardProcess(test);

/** Yields `n` times, alternating microtask and macrotask turns, so senders and handlers interleave. */
async function churn(n: number): Promise<void> {
  for (let k = 0; k < n; k++) await (k % 2 ? tick() : Promise.resolve());
}

interface Tagged {
  s: number;
  i: number;
  work: number;
}

test('concurrent senders: per-sender order is kept, every call gets its own reply, the handler never overlaps', async (t) => {
  const op = fc.record({
    kind: fc.constantFrom('call' as const, 'callLater' as const, 'cast' as const),
    pause: fc.nat(3),
    work: fc.nat(3),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(op, { maxLength: 12 }), { minLength: 1, maxLength: 6 }), async (senders) => {
      const system = createSystem();
      let inside = 0;
      let overlapped = false;
      const seen: Tagged[] = [];
      const ref = system.spawn({
        // Sync when there is no work, async otherwise: both paths of the run loop take part.
        handle(m: Tagged): string | Promise<string> {
          inside++;
          if (inside > 1) overlapped = true;
          if (m.work === 0) {
            seen.push(m);
            inside--;
            return `${m.s}:${m.i}`;
          }
          return (async () => {
            await churn(m.work);
            if (inside > 1) overlapped = true;
            seen.push(m);
            inside--;
            return `${m.s}:${m.i}`;
          })();
        },
      });
      const wrongReplies: string[] = [];
      await Promise.all(
        senders.map(async (ops, s) => {
          const later: Promise<void>[] = [];
          for (let i = 0; i < ops.length; i++) {
            const o = ops[i]!;
            await churn(o.pause);
            const msg = { s, i, work: o.work };
            const check = (reply: string) => {
              if (reply !== `${s}:${i}`) wrongReplies.push(`${s}:${i} got ${reply}`);
            };
            if (o.kind === 'cast') ref.cast(msg);
            else if (o.kind === 'call') check(await ref.call(msg));
            else later.push(ref.call(msg).then(check));
          }
          await Promise.all(later);
        }),
      );
      await ref.call({ s: -1, i: 0, work: 0 }); // everything cast before this has been handled
      await system.shutdown();

      if (overlapped) return false;
      if (wrongReplies.length > 0) return false;
      for (let s = 0; s < senders.length; s++) {
        const indices = seen.filter((m) => m.s === s).map((m) => m.i);
        const expected = senders[s]!.map((_, i) => i);
        if (JSON.stringify(indices) !== JSON.stringify(expected)) return false;
      }
      return seen.length === senders.reduce((n, ops) => n + ops.length, 0) + 1;
    }),
    { numRuns: 60 },
  );
  t.pass();
});

test('a crash at message k: earlier calls answered, call k gets ActorCrashedError, later ones ActorStoppedError, none hang', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 25 }), fc.nat(24), fc.boolean(), fc.boolean(), async (n, rawK, asyncHandler, supervised) => {
      const k = rawK % n;
      const system = createSystem({ callTimeoutMs: 2000 });
      const handled: number[] = [];
      const boom = new Error(`crash at ${k}`);
      let incarnations = 0;
      const behavior = () => {
        incarnations++;
        return {
          handle(i: number): number | Promise<number> {
            handled.push(i);
            if (!asyncHandler) {
              if (i === k) throw boom;
              return i;
            }
            return (async () => {
              await tick();
              if (i === k) throw boom;
              return i;
            })();
          },
        };
      };
      let ref: ActorRef<number, number>;
      let sup: SupervisorRef | undefined;
      if (supervised) {
        sup = await system.supervise({ strategy: 'one_for_one', children: [{ id: 'x', start: behavior }] });
        ref = sup.child('x') as ActorRef<number, number>;
      } else {
        ref = system.spawn(behavior());
      }
      const outcomes = await Promise.allSettled(Array.from({ length: n }, (_, i) => ref.call(i)));
      let ok = handled.length === k + 1 && handled.every((v, i) => v === i);
      outcomes.forEach((o, i) => {
        if (i < k) ok &&= o.status === 'fulfilled' && o.value === i;
        else if (i === k) ok &&= o.status === 'rejected' && o.reason instanceof ActorCrashedError && o.reason.cause === boom;
        else ok &&= o.status === 'rejected' && o.reason instanceof ActorStoppedError;
      });
      if (sup !== undefined) {
        await waitFor(() => sup.child('x') !== ref && sup.child('x')!.alive, 'the restart');
        const fresh = sup.child('x') as ActorRef<number, number>;
        ok &&= fresh.mailboxSize === 0 && incarnations === 2;
        ok &&= (await fresh.call(-7)) === -7;
      }
      await system.shutdown();
      return ok;
    }),
    { numRuns: 80 },
  );
  t.pass();
});

test('a stop at any point: the handled messages are a prefix, every call settles with its reply or ActorStoppedError', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 30 }), fc.nat(40), fc.nat(4), async (n, stopAfterTurns, work) => {
      const system = createSystem();
      const handled: number[] = [];
      const ref = system.spawn({
        async handle(i: number) {
          await churn(work);
          handled.push(i);
          return i;
        },
      });
      // allSettled right away: a caller that leaves its promise unobserved would own that unhandled rejection.
      const settled = Promise.allSettled(Array.from({ length: n }, (_, i) => ref.call(i)));
      await churn(stopAfterTurns);
      await ref.stop();
      const outcomes = await settled;
      await system.shutdown();
      const prefix = handled.every((v, i) => v === i);
      const consistent = outcomes.every((o, i) =>
        i < handled.length ? o.status === 'fulfilled' && o.value === i : o.status === 'rejected' && o.reason instanceof ActorStoppedError,
      );
      return prefix && consistent;
    }),
    { numRuns: 60 },
  );
  t.pass();
});

test('restart intensity: bursts of crashes separated by more than periodMs give up iff one burst has more than intensity', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 3 }),
      // Long enough that a burst of 4 crashes and restarts fits in one window on a loaded machine (at
      // 40-90 ms a CI run at load 20 spread a burst past its window, and the supervisor rightly went on).
      fc.integer({ min: 200, max: 400 }),
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 3 }),
      async (intensity, periodMs, bursts) => {
        const system = createSystem();
        const fatal: Error[] = [];
        system.on('fatal', (e) => fatal.push(e));
        const sup = await system.supervise({
          strategy: 'one_for_one',
          intensity,
          periodMs,
          children: [
            {
              id: 'w',
              start: () => ({
                handle(m: string) {
                  if (m === 'crash') throw new Error('crash');
                  return m;
                },
              }),
            },
          ],
        });
        const expectGiveUp = bursts.some((b) => b > intensity);
        let gaveUp = false;
        outer: for (let j = 0; j < bursts.length; j++) {
          if (j > 0) await sleep(periodMs + 30); // the previous burst leaves the window
          for (let c = 0; c < bursts[j]!; c++) {
            const before = sup.child('w') as ActorRef<string, string>;
            before.cast('crash');
            await waitFor(() => !sup.alive || (sup.child('w') !== before && sup.child('w')!.alive), 'a restart or a give-up');
            if (!sup.alive) {
              gaveUp = true;
              break outer;
            }
          }
        }
        const restarts = sup.alive ? sup.children()[0]!.restarts : -1;
        await system.shutdown();
        if (gaveUp !== expectGiveUp) return false;
        if (gaveUp) return fatal.length === 1 && fatal[0] instanceof SupervisorGaveUpError;
        return fatal.length === 0 && restarts === bursts.reduce((a, b) => a + b, 0);
      },
    ),
    {
      numRuns: 24,
      // Boundaries always checked: exactly intensity per window (twice), and one more than intensity.
      examples: [
        [2, 200, [2, 2]],
        [3, 200, [3, 1, 3]],
        [1, 200, [1, 2]],
        [0, 200, [0, 1]],
      ],
    },
  );
  t.pass();
});

test('restart intensity: k crashes with a fixed spacing give up iff more than intensity fall in one window', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 1, max: 6 }),
      fc.constantFrom('dense' as const, 'sparse' as const),
      async (intensity, k, spacing) => {
        const periodMs = 60;
        // dense: all k restarts within one window; sparse: never two in the same window.
        const gapMs = spacing === 'dense' ? 0 : periodMs + 25;
        const system = createSystem();
        const sup = await system.supervise({
          strategy: 'one_for_one',
          intensity,
          periodMs,
          children: [{ id: 'w', start: () => ({ handle: (m: string) => (m === 'crash' ? Promise.reject(new Error('crash')) : m) }) }],
        });
        for (let c = 0; c < k && sup.alive; c++) {
          if (c > 0 && gapMs > 0) await sleep(gapMs);
          const before = sup.child('w') as ActorRef<string, string>;
          before.cast('crash');
          await waitFor(() => !sup.alive || (sup.child('w') !== before && sup.child('w')!.alive), 'a restart or a give-up');
        }
        const gaveUp = !sup.alive;
        await system.shutdown();
        const mostInOneWindow = spacing === 'dense' ? k : 1;
        return gaveUp === mostInOneWindow > intensity;
      },
    ),
    {
      numRuns: 24,
      examples: [
        [2, 2, 'dense'],
        [2, 3, 'dense'],
        [3, 3, 'dense'],
        [1, 3, 'sparse'],
        [0, 2, 'sparse'],
      ],
    },
  );
  t.pass();
});
