/** Callbacks after a recorded outcome: which one runs, what it is told, and that its failures are only logged. */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HookContext, ResolvedJobDefinition } from '../src/define.js';
import { Hooks, failureHook } from '../src/engine/hooks.js';
import { capturingLogger, job } from './engine/fixtures.js';

function definition(over: Partial<ResolvedJobDefinition>): ResolvedJobDefinition {
  return { type: 't', queue: 'q', maxAttempts: 3, backoff: { baseMs: 1, maxMs: 1 }, perform: () => undefined, ...over };
}

test('which callback a recorded failure calls', (t) => {
  t.is(failureHook({ retryAt: new Date() }), 'onError');
  t.is(failureHook({ finalState: 'failed' }), 'onFailed');
  t.is(failureHook({}), 'onFailed');
  t.is(failureHook({ finalState: 'cancelled' }), 'onCancel');
  t.is(failureHook({ finalState: 'cancelled', neverStarted: true }), undefined, 'cancelled in the prefetch: it never ran');
});

test('callbacks get the job, its payload and a context without signal or progress', (t) => {
  const { log } = capturingLogger();
  const calls: [string, unknown[], HookContext][] = [];
  const def = definition({
    onSuccess: (result, payload, ctx) => void calls.push(['onSuccess', [result, payload], ctx]),
    onError: (err, payload, ctx) => void calls.push(['onError', [err, payload], ctx]),
    onFailed: (err, payload, ctx) => void calls.push(['onFailed', [err, payload], ctx]),
    onCancel: (payload, ctx) => void calls.push(['onCancel', [payload], ctx]),
  });
  const hooks = new Hooks(new Map([['t', def]]), 'part', log);
  const j = job({ attempt: 2, queue: 'q9' });
  const cause = new Error('no');
  hooks.succeeded(j, 42);
  hooks.failed({ job: j, error: null, cause, retryAt: new Date() });
  hooks.failed({ job: j, error: null, cause, finalState: 'failed' });
  hooks.failed({ job: j, error: null, cause, finalState: 'cancelled' });
  hooks.failed({ job: j, error: null, cause, finalState: 'cancelled', neverStarted: true });
  t.deepEqual(
    calls.map(([name, args]) => [name, args]),
    [
      ['onSuccess', [42, j.payload]],
      ['onError', [cause, j.payload]],
      ['onFailed', [cause, j.payload]],
      ['onCancel', [j.payload]],
    ],
  );
  const ctx = calls[0]![2];
  t.deepEqual(Object.keys(ctx).sort(), ['attempt', 'id', 'logger', 'partition', 'queue']);
  t.like(ctx, { id: j.id, partition: 'part', queue: 'q9', attempt: 2 });
});

test('a callback that throws or rejects is logged with its name, and the next one still runs', async (t) => {
  const { log, lines } = capturingLogger();
  let failedRan = false;
  const def = definition({
    onSuccess: () => {
      throw new Error('sync boom');
    },
    onError: () => Promise.reject(new Error('async boom')),
    onFailed: () => {
      failedRan = true;
    },
  });
  const hooks = new Hooks(new Map([['t', def]]), 'p', log);
  const j = job();
  hooks.succeeded(j, 1);
  hooks.failed({ job: j, error: null, cause: null, retryAt: new Date() });
  hooks.failed({ job: j, error: null, cause: null, finalState: 'failed' });
  await sleep(0);
  t.true(failedRan);
  const errors = lines.filter((l) => l.level === 50).map((l) => [l.msg, (l.err as { message: string }).message, l.jobId]);
  t.deepEqual(errors.sort(), [
    ['onError callback failed', 'async boom', j.id],
    ['onSuccess callback failed', 'sync boom', j.id],
  ]);
});

test('a job of a type without callbacks, or not defined here, calls nothing', (t) => {
  const { log, lines } = capturingLogger();
  const hooks = new Hooks(new Map([['t', definition({})]]), 'p', log);
  hooks.succeeded(job(), 1);
  hooks.failed({ job: job(), error: null, cause: null, finalState: 'failed' });
  hooks.failed({ job: job({ type: 'unknown' }), error: null, cause: null, finalState: 'cancelled' });
  t.deepEqual(lines, []);
});
