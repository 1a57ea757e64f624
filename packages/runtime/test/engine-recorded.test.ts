/** What follows a written batch: events, counts and callbacks for recorded outcomes; refused ones written again or let go. */
import test from 'ava';
import { UnstorableResultError } from '@partita/core';
import type { ClaimedJob } from '@partita/postgres';
import type { ResolvedJobDefinition } from '../src/define.js';
import type { EngineEvent } from '../src/engine/messages.js';
import { ContinuationThrew, emptyBatch, type Accepted, type FlushBatch, type PendingFailure } from '../src/engine/outcomes.js';
import { applyRecorded } from '../src/engine/recorded.js';
import { FakeClock, capturingLogger, job } from './engine/fixtures.js';

function setup() {
  const { log, lines } = capturingLogger();
  const events: EngineEvent[] = [];
  const hooks: [string, string][] = [];
  const pending = emptyBatch();
  const def = {
    type: 't',
    queue: 'q',
    maxAttempts: 3,
    backoff: { baseMs: 10, maxMs: 10 },
    perform: () => undefined,
  } as ResolvedJobDefinition;
  const deps = {
    nodeId: 'node-1',
    definitions: new Map([['t', def]]),
    log,
    hooks: {
      succeeded: (j: ClaimedJob) => void hooks.push(['succeeded', j.id]),
      failed: (f: PendingFailure) => void hooks.push(['failed', f.job.id]),
    },
    emit: (e: EngineEvent) => void events.push(e),
    pending: () => pending,
  };
  return { deps, lines, events, hooks, pending };
}

function accepted(over: Partial<Accepted> = {}): Accepted {
  const none = new Map<string, string>();
  return {
    completed: new Set(),
    failed: new Set(),
    cancelled: new Set(),
    refused: { completions: none, failures: none, releases: none, progress: none },
    offending: new Map(),
    ...over,
  };
}

test('recorded outcomes become events, counts and callbacks', (t) => {
  const { deps, events, hooks, pending } = setup();
  const clock = new FakeClock();
  const [c, r, f, x, back, cancelled] = [job(), job(), job(), job(), job({ queue: 'other' }), job()];
  const batch: FlushBatch = {
    completions: [{ job: c, result: 7 }],
    failures: [
      { job: r, error: null, cause: null, retryAt: new Date(5) },
      { job: f, error: null, cause: null, finalState: 'failed' },
      { job: x, error: null, cause: null, finalState: 'cancelled' },
    ],
    releases: [back, cancelled],
    progress: new Map(),
  };
  const counts = applyRecorded(
    deps,
    batch,
    accepted({ completed: new Set([c.id]), failed: new Set([r.id, f.id, x.id]), cancelled: new Set([cancelled.id]) }),
    clock.now,
  );
  t.deepEqual(
    events.map((e) => [e.kind, e.job.id]),
    [
      ['completed', c.id],
      ['retrying', r.id],
      ['failed', f.id],
      ['cancelled', x.id],
      ['cancelled', cancelled.id],
    ],
  );
  t.deepEqual(hooks, [
    ['succeeded', c.id],
    ['failed', r.id],
    ['failed', f.id],
    ['failed', x.id],
  ]);
  t.is(counts.get('q', 'completed'), 1);
  t.is(counts.get('q', 'retrying'), 1);
  t.is(counts.get('q', 'failed'), 1);
  t.is(counts.get('q', 'cancelled'), 2, 'a job handed back that a cancel finished counts as cancelled');
  t.is(counts.get('other', 'released'), 1);
  t.deepEqual(pending, emptyBatch(), 'nothing to write again');
});

test('outcomes whose lease was lost are logged and dropped: no event, no callback', (t) => {
  const { deps, events, hooks, lines, pending } = setup();
  const [c, f] = [job(), job()];
  const batch: FlushBatch = {
    ...emptyBatch(),
    completions: [{ job: c, result: 1 }],
    failures: [{ job: f, error: null, cause: null, finalState: 'failed' }],
  };
  applyRecorded(deps, batch, accepted(), 0);
  t.deepEqual(events, []);
  t.deepEqual(hooks, []);
  t.deepEqual(pending, emptyBatch());
  t.deepEqual(
    lines.map((l) => [l.level, l.jobId]),
    [
      [40, c.id],
      [40, f.id],
    ],
  );
});

test('a refused result fails the attempt, to be written again; a refused error is replaced once, then let go', (t) => {
  const { deps, events, pending } = setup();
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const [c, f, g] = [job({ attempt: 1 }), job(), job()];
  const failure: PendingFailure = {
    job: f,
    error: { attempt: 1, at: '', name: 'E', message: 'bad \u0000' },
    cause: null,
    finalState: 'failed',
  };
  const batch: FlushBatch = {
    ...emptyBatch(),
    completions: [{ job: c, result: 'x' }],
    failures: [failure, { job: g, error: null, cause: null, finalState: 'failed', replacedError: true }],
  };
  applyRecorded(
    deps,
    batch,
    accepted({
      refused: {
        completions: new Map([[c.id, 'too big']]),
        failures: new Map([
          [f.id, 'nul byte'],
          [g.id, 'still'],
        ]),
        releases: new Map(),
        progress: new Map(),
      },
    }),
    clock.now,
  );
  t.deepEqual(events, []);
  t.is(pending.failures.length, 2);
  const [retry, replaced] = pending.failures;
  t.is(retry!.job, c);
  t.true(retry!.cause instanceof UnstorableResultError);
  const retryIn = retry!.retryAt!.getTime() - clock.now;
  t.true(retryIn >= 0 && retryIn <= 10, 'attempts remain: retried after its backoff (10 ms at most, with jitter)');
  t.is(replaced!.job, f);
  t.true(replaced!.replacedError);
  t.regex(replaced!.error!.message, /nul byte.*node-1/);
});

test("a job whose continuation kept throwing fails without it, with the continuation's error", (t) => {
  const { deps, events, pending } = setup();
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const [c, x] = [job(), job()];
  const threw = new ContinuationThrew('t.continuation', new RangeError('nope'));
  const batch: FlushBatch = {
    ...emptyBatch(),
    completions: [{ job: c, result: 1 }],
    failures: [{ job: x, error: null, cause: null, finalState: 'cancelled' }],
  };
  applyRecorded(
    deps,
    batch,
    accepted({
      completed: new Set([c.id]),
      offending: new Map<string, unknown>([
        [c.id, threw],
        [x.id, new Error('row refused')],
      ]),
    }),
    clock.now,
  );
  t.deepEqual(events, [], 'nothing of theirs was recorded');
  t.deepEqual(
    pending.failures.map((f) => [f.job.id, f.finalState, f.skipContinuation, f.error!.name, f.error!.message]),
    [
      [c.id, 'failed', true, 'RangeError', threw.message],
      [x.id, 'cancelled', true, 'Error', 'Postgres refused to record its outcome: row refused'],
    ],
  );
});
