/** The outcome batch: when it flushes, what a failed write puts back, and how a write's results are sorted. */
import test from 'ava';
import type { Recorded } from '@partita/postgres';
import {
  CONTINUED_BACKLOG,
  ContinuationThrew,
  MAX_BATCH_FACTOR,
  OutcomeBatch,
  attemptFailed,
  recordAttempt,
  claimableQueues,
  emptyBatch,
  settleWrites,
  splitContinued,
  unrecordableError,
  type FlushBatch,
  type PendingCompletion,
} from '../src/engine/outcomes.js';
import { JobCancelledError } from '@partita/core';
import { FakeClock, job } from './engine/fixtures.js';

const recorded = (ids: string[], refused: [string, string][] = []): Recorded => Object.assign(new Set(ids), { refused: new Map(refused) });
const ok = <T>(value: T): PromiseFulfilledResult<T> => ({ status: 'fulfilled', value });
const no = (reason: unknown): PromiseRejectedResult => ({ status: 'rejected', reason });

test('the first outcome books a flush, later ones find it booked, a full batch flushes at once', (t) => {
  const b = new OutcomeBatch(3);
  b.pending.releases.push(job());
  t.is(b.due(), 'later');
  b.pending.releases.push(job());
  t.is(b.due(), 'booked');
  b.pending.progress.set('x', '1');
  t.is(b.due(), 'now');
});

test('one batch is written at a time; the next grows meanwhile', (t) => {
  const b = new OutcomeBatch(100);
  t.is(b.take(), undefined, 'nothing waits');
  const first = job();
  b.pending.completions.push({ job: first, result: 1 });
  b.due();
  const batch = b.take()!;
  t.is(b.scheduled, false, 'taking the batch is the booked flush');
  t.deepEqual(
    batch.completions.map((c) => c.job.id),
    [first.id],
  );
  t.deepEqual(b.inflight, [batch]);
  t.is(b.size, 0);
  b.pending.releases.push(job());
  t.is(b.take(), undefined, 'the first is still being written');
  t.false(b.empty);
  b.settled(batch);
  t.deepEqual(b.inflight, []);
  const next = b.take()!;
  t.is(next.releases.length, 1);
  b.settled(next);
  t.true(b.empty);
});

test('with two writes allowed the next batch goes out beside keyed completions, a third waits; none beside plain ones or progress', (t) => {
  const b = new OutcomeBatch(100, 2);
  const keyed = () => ({ ...job(), executionKey: 'k' });
  b.pending.completions.push({ job: job(), result: 0 });
  const plain = b.take()!;
  b.pending.completions.push({ job: keyed(), result: 1 });
  t.is(b.take(), undefined, 'plain completions are written one at a time');
  b.settled(plain);
  const first = b.take()!;
  b.pending.completions.push({ job: keyed(), result: 2 });
  const second = b.take()!;
  t.truthy(second, 'written beside the first');
  t.deepEqual(b.inflight, [first, second]);
  b.pending.completions.push({ job: job(), result: 3 });
  t.is(b.take(), undefined, 'two are being written');
  b.settled(first);
  t.deepEqual(b.inflight, [second], 'each settles by itself, in any order');
  b.pending.progress.set('x', '1');
  t.is(b.take(), undefined, 'its progress could land after the completion of its job in the write beside it');
  b.settled(second);
  const third = b.take()!;
  t.is(third.progress.size, 1);
  b.pending.completions.push({ job: job(), result: 4 });
  t.is(b.take(), undefined, 'nothing goes beside a batch with progress either');
  t.is(b.requeue(third), 100);
  t.deepEqual(b.inflight, []);
  t.is(b.take()!.completions.length, 2, 'the failed batch back in front of what arrived since');
});

test('beside a batch of continued steps a second write goes out only once CONTINUED_BACKLOG x flushBatch wait; keyed ones not while continuations run', (t) => {
  const b = new OutcomeBatch(10, 2, false);
  const step = () => ({ ...job(), continuation: 'workflows' });
  b.pending.completions.push({ job: step(), result: 0 });
  const first = b.take()!;
  for (let i = 1; i < 10 * CONTINUED_BACKLOG; i++) b.pending.completions.push({ job: step(), result: i });
  t.is(b.take(), undefined, 'a batch and more wait: still one write');
  b.pending.completions.push({ job: step(), result: 99 });
  const second = b.take()!;
  t.truthy(second, 'the backlog reached: written beside the first');
  t.deepEqual(b.inflight, [first, second]);
  b.settled(first);
  b.settled(second);

  const keyedFirst = (() => {
    b.pending.completions.push({ job: { ...job(), executionKey: 'k' }, result: 0 });
    return b.take()!;
  })();
  for (let i = 0; i < 100; i++) b.pending.completions.push({ job: { ...job(), executionKey: `k${i}` }, result: i });
  t.is(b.take(), undefined, 'keyed completions go one at a time where continuations run');
  b.settled(keyedFirst);
  t.truthy(b.take());
});

test('one write takes at most MAX_BATCH_FACTOR x flushBatch outcomes, completions first; the rest waits in order and is due at once', (t) => {
  const b = new OutcomeBatch(2);
  const max = 2 * MAX_BATCH_FACTOR;
  const completions = Array.from({ length: max - 1 }, () => job());
  const failures = [job(), job(), job()];
  for (const j of completions) b.pending.completions.push({ job: j, result: null });
  for (const j of failures) b.pending.failures.push({ job: j, error: null, cause: new Error('x') });
  b.pending.releases.push(job());
  b.pending.progress.set('p', '1');
  const first = b.take()!;
  t.is(first.completions.length + first.failures.length + first.releases.length, max);
  t.deepEqual(
    first.completions.map((c) => c.job.id),
    completions.map((j) => j.id),
  );
  t.deepEqual(
    first.failures.map((f) => f.job.id),
    [failures[0]!.id],
  );
  t.is(first.progress.get('p'), '1');
  t.is(b.size, 3, 'two failures and the release wait');
  t.is(b.due(), 'now', 'the rest is over flushBatch: written as soon as the first lands');
  b.settled(first);
  const second = b.take()!;
  t.deepEqual(
    second.failures.map((f) => f.job.id),
    failures.slice(1).map((j) => j.id),
  );
  t.is(second.releases.length, 1);
  t.is(second.progress.size, 0);
});

test('a failed write goes back in front of what arrived since, in order; the newest progress wins', (t) => {
  const b = new OutcomeBatch(100);
  const [a, c, d] = [job(), job(), job()];
  b.pending.completions.push({ job: a, result: 'a' });
  b.pending.progress.set(a.id, '"old"');
  b.pending.progress.set(c.id, '"c"');
  const batch = b.take()!;
  b.pending.completions.push({ job: d, result: 'd' });
  b.pending.progress.set(a.id, '"new"');
  t.is(b.requeue(batch), 100);
  t.deepEqual(b.inflight, []);
  t.deepEqual(
    b.pending.completions.map((x) => x.job.id),
    [a.id, d.id],
  );
  t.deepEqual(
    [...b.pending.progress],
    [
      [a.id, '"new"'],
      [c.id, '"c"'],
    ],
  );
});

test('failed writes back off, doubling to 5 s; a booked flush is not booked twice; a good write resets it', (t) => {
  const b = new OutcomeBatch(100);
  const waits: (number | undefined)[] = [];
  for (let i = 0; i < 7; i++) {
    b.pending.releases.push(job());
    const batch = b.take()!;
    waits.push(b.requeue(batch));
  }
  t.deepEqual(waits, [100, 200, 400, 800, 1600, 3200, 5000]);
  const all = b.take()!;
  t.is(all.releases.length, 7, 'nothing was lost');
  b.due();
  t.is(b.requeue(emptyBatch()), undefined, 'a flush is already booked');
  t.is(b.backoffMs, 5000);
  b.settled(all);
  t.is(b.backoffMs, 0);
});

test('held: tracked jobs, then outcomes pending and in flight (their leases still need renewing)', (t) => {
  const b = new OutcomeBatch(100);
  const [a, c, d, e] = [job(), job(), job(), job()];
  b.pending.completions.push({ job: a, result: 1 });
  b.take();
  b.pending.failures.push({ job: c, error: null, cause: null, finalState: 'cancelled' });
  b.pending.releases.push(d);
  b.pending.progress.set(e.id, '1');
  t.deepEqual(b.held(['running']), ['running', c.id, d.id, a.id]);
});

test('claimable queues: every queue a job went back to, and queues whose keyed jobs ended', (t) => {
  const batch: FlushBatch = {
    completions: [
      { job: job({ queue: 'plain' }), result: 1 },
      { job: job({ queue: 'k1', executionKey: 'x' }), result: 1 },
    ],
    failures: [
      { job: job({ queue: 'k2', executionKey: 'y' }), error: null, cause: null },
      { job: job({ queue: 'plain2' }), error: null, cause: null },
    ],
    releases: [job({ queue: 'back' }), job({ queue: 'back' })],
    progress: new Map(),
  };
  t.deepEqual(claimableQueues(batch).sort(), ['back', 'k1', 'k2']);
});

test('final outcomes of types with a continuation are written apart; retries and failures that skip it are not', (t) => {
  const c1 = { job: job({ type: 'cont' }), result: 1 };
  const c2 = { job: job({ type: 'plain' }), result: 2 };
  const retry = { job: job({ type: 'cont' }), error: null, cause: null, retryAt: new Date(0) };
  const final = { job: job({ type: 'cont' }), error: null, cause: null, finalState: 'failed' as const };
  const skip = { ...final, job: job({ type: 'cont' }), skipContinuation: true };
  const batch: FlushBatch = { completions: [c1, c2], failures: [retry, final, skip], releases: [job()], progress: new Map([['x', '1']]) };
  const { plain, continued } = splitContinued(batch, (j) => j.type === 'cont');
  t.deepEqual(continued, { completions: [c1], failures: [final] });
  t.deepEqual(plain.completions, [c2]);
  t.deepEqual(plain.failures, [retry, skip]);
  t.is(plain.releases, batch.releases);
  const none = splitContinued(batch, () => false);
  t.is(none.plain, batch);
  t.is(none.continued, undefined);
});

test('a write whose statements all succeeded: everything written, what Postgres accepted and refused', (t) => {
  const [a, f, r] = [job(), job(), job()];
  const batch: FlushBatch = {
    completions: [{ job: a, result: 1 }],
    failures: [{ job: f, error: null, cause: null }],
    releases: [r],
    progress: new Map([[a.id, '5']]),
  };
  const flushed = settleWrites(
    batch,
    batch,
    undefined,
    ok(recorded([a.id])),
    ok(recorded([], [[f.id, 'too long']])),
    ok({ cancelled: new Set([r.id]), refused: new Map() }),
    ok(new Map()),
    ok(undefined),
  );
  t.is(flushed.unwritten, undefined);
  t.deepEqual(flushed.batch, batch);
  t.deepEqual([...flushed.accepted.completed], [a.id]);
  t.deepEqual([...flushed.accepted.refused.failures], [[f.id, 'too long']]);
  t.deepEqual([...flushed.accepted.cancelled], [r.id]);
});

test('a write with failed statements: only their parts are written again, with the last error', (t) => {
  const [a, f, r] = [job(), job(), job()];
  const batch: FlushBatch = {
    completions: [{ job: a, result: 1 }],
    failures: [{ job: f, error: null, cause: null }],
    releases: [r],
    progress: new Map([[a.id, '5']]),
  };
  const flushed = settleWrites(
    batch,
    batch,
    undefined,
    no(new Error('c')),
    ok(recorded([f.id])),
    no(new Error('r')),
    ok(new Map()),
    ok(undefined),
  );
  t.deepEqual(flushed.batch.completions, []);
  t.deepEqual(flushed.batch.failures, batch.failures);
  t.deepEqual(flushed.batch.releases, []);
  t.is(flushed.batch.progress, batch.progress);
  t.deepEqual(flushed.unwritten!.batch.completions, batch.completions);
  t.deepEqual(flushed.unwritten!.batch.releases, batch.releases);
  t.deepEqual(flushed.unwritten!.batch.failures, []);
  t.is((flushed.unwritten!.error as Error).message, 'r');
});

test('a continued part that rolled back because its continuation threw is written again and counts a try', (t) => {
  const c: PendingCompletion = { job: job({ type: 'cont' }), result: 1 };
  const p: PendingCompletion = { job: job(), result: 2 };
  const batch: FlushBatch = { completions: [c, p], failures: [], releases: [], progress: new Map() };
  const { plain, continued } = splitContinued(batch, (j) => j.type === 'cont');
  const threw = new ContinuationThrew('cont.continuation', new Error('boom'));
  const flushed = settleWrites(
    batch,
    plain,
    continued,
    ok(recorded([p.job.id])),
    ok(recorded([])),
    ok({ cancelled: new Set<string>(), refused: new Map() }),
    ok(new Map()),
    no(threw),
  );
  t.deepEqual(flushed.batch.completions, [p]);
  t.deepEqual(flushed.unwritten!.batch.completions, [c]);
  t.is(flushed.unwritten!.error, threw);
  t.is(c.continuationTries, 1);
  // A store error (not the jobs' fault) does not count.
  settleWrites(
    batch,
    plain,
    continued,
    ok(recorded([])),
    ok(recorded([])),
    ok({ cancelled: new Set<string>(), refused: new Map() }),
    ok(new Map()),
    no(new Error('connection reset')),
  );
  t.is(c.continuationTries, 1);
  // Nor does a continuation that threw for a transient reason: its connection went, a deadlock chose it.
  for (const code of ['40P01', '57P01', '08006']) {
    const transient = new ContinuationThrew('cont.continuation', Object.assign(new Error(`sqlstate ${code}`), { code }));
    const again = settleWrites(
      batch,
      plain,
      continued,
      ok(recorded([p.job.id])),
      ok(recorded([])),
      ok({ cancelled: new Set<string>(), refused: new Map() }),
      ok(new Map()),
      no(transient),
    );
    t.deepEqual(again.unwritten!.batch.completions, [c], `${code}: written again`);
  }
  t.is(c.continuationTries, 1);
});

test('a continued part written in parts where a later part failed for a transient reason: the committed parts stay written, the rest is written again', (t) => {
  const first = { job: job({ type: 'cont' }), result: 1 };
  const second: PendingCompletion = { job: job({ type: 'cont' }), result: 2 };
  const failedOne = { job: job({ type: 'cont' }), error: null, cause: new Error('x'), finalState: 'failed' as const };
  const batch: FlushBatch = { completions: [first, second], failures: [failedOne], releases: [], progress: new Map() };
  const { plain, continued } = splitContinued(batch, (j) => j.type === 'cont');
  const deadlock = new ContinuationThrew('cont.continuation', Object.assign(new Error('deadlock detected'), { code: '40P01' }));
  const flushed = settleWrites(
    batch,
    plain,
    continued,
    ok(recorded([])),
    ok(recorded([])),
    ok({ cancelled: new Set<string>(), refused: new Map() }),
    ok(new Map()),
    ok({
      completed: recorded([first.job.id]),
      failed: recorded([]),
      offending: new Map(),
      later: { part: { completions: [second], failures: [failedOne] }, error: deadlock },
    }),
  );
  t.deepEqual(flushed.batch.completions, [first]);
  t.deepEqual(flushed.batch.failures, []);
  t.deepEqual([...flushed.accepted.completed], [first.job.id]);
  t.deepEqual(flushed.unwritten!.batch.completions, [second]);
  t.deepEqual(flushed.unwritten!.batch.failures, [failedOne]);
  t.is(flushed.unwritten!.error, deadlock);
  t.is(second.continuationTries, undefined, 'a transient failure counts no try');
});

test('a continued part that committed merges into what was accepted, with the jobs it singled out', (t) => {
  const c = { job: job({ type: 'cont' }), result: 1 };
  const bad = { job: job({ type: 'cont' }), result: 2 };
  const p = { job: job(), result: 3 };
  const batch: FlushBatch = { completions: [c, bad, p], failures: [], releases: [], progress: new Map() };
  const { plain, continued } = splitContinued(batch, (j) => j.type === 'cont');
  const flushed = settleWrites(
    batch,
    plain,
    continued,
    ok(recorded([p.job.id])),
    ok(recorded([])),
    ok({ cancelled: new Set<string>(), refused: new Map() }),
    ok(new Map()),
    ok({ completed: recorded([c.job.id]), failed: recorded([]), offending: new Map([[bad.job.id, new Error('x')]]) }),
  );
  t.is(flushed.unwritten, undefined);
  t.deepEqual(flushed.batch.completions, [p, c, bad]);
  t.deepEqual([...flushed.accepted.completed].sort(), [c.job.id, p.job.id].sort());
  t.deepEqual([...flushed.accepted.offending.keys()], [bad.job.id]);
});

test('a failed attempt is retried after its backoff while attempts remain, then fails for good', (t) => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const def = { backoff: { baseMs: 1000, maxMs: 60_000 } } as Parameters<typeof attemptFailed>[2];
  const first = attemptFailed(job({ attempt: 1, maxAttempts: 2 }), new TypeError('bad'), def, clock.now);
  t.is(first.finalState, undefined);
  t.true(first.retryAt!.getTime() > clock.now);
  t.true(first.retryAt!.getTime() <= clock.now + 60_000);
  t.is(first.error!.name, 'TypeError');
  t.is(first.error!.at, new Date(clock.now).toISOString());
  const last = attemptFailed(job({ attempt: 2, maxAttempts: 2 }), new Error('bad'), def, clock.now);
  t.is(last.finalState, 'failed');
  t.is(last.retryAt, undefined);
  t.is(
    attemptFailed(job({ attempt: 1, maxAttempts: 5 }), new Error('x'), undefined, clock.now).finalState,
    'failed',
    'no definition here: no backoff to retry with',
  );
});

test('an error Postgres refused is replaced by one that keeps none of its text, only a plain name', (t) => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const f = { job: job({ attempt: 2 }), error: { attempt: 2, at: '', name: 'BadThing', message: 'has \u0000 in it' }, cause: null };
  const e = unrecordableError(f, 'invalid byte', 'node-1', clock.now);
  t.is(e.name, 'BadThing');
  t.is(e.attempt, 2);
  t.is(e.at, new Date(clock.now).toISOString());
  t.regex(e.message, /invalid byte.*node node-1/);
  t.notRegex(e.message, /\u0000/);
  t.is(unrecordableError({ ...f, error: { ...f.error, name: 'bad\u0000name' } }, 'x', 'n', clock.now).name, 'Error');
});

test('what an ended attempt records: its result, its failure, a cancel, a hand-back on shutdown, nothing once its lease is lost', (t) => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const def = { backoff: { baseMs: 0, maxMs: 0 } } as Parameters<typeof attemptFailed>[2];
  const pending = emptyBatch();
  const [ok, okJson, failed, cancelled, shutdown, lost] = [job(), job(), job({ attempt: 1, maxAttempts: 2 }), job(), job(), job()];
  t.true(recordAttempt(pending, ok, undefined, { ok: true, result: 1 }, def, clock.now));
  t.true(recordAttempt(pending, okJson, undefined, { ok: true, result: { a: 1 }, json: '{"a":1}' }, def, clock.now));
  t.true(recordAttempt(pending, failed, undefined, { ok: false, error: new Error('x') }, def, clock.now));
  t.true(recordAttempt(pending, cancelled, 'cancel', { ok: false, error: new Error('aborted') }, def, clock.now));
  t.true(
    recordAttempt(pending, shutdown, 'shutdown', { ok: true, result: 1 }, def, clock.now),
    'ended by a shutdown: handed back, even if it finished',
  );
  t.false(recordAttempt(pending, lost, 'lease', { ok: true, result: 1 }, def, clock.now));
  t.deepEqual(pending.completions, [
    { job: ok, result: 1 },
    { job: okJson, result: { a: 1 }, json: '{"a":1}' },
  ]);
  t.deepEqual(
    pending.failures.map((f) => [f.job.id, f.finalState, f.retryAt?.getTime(), f.error?.message ?? null]),
    [
      [failed.id, undefined, clock.now, 'x'],
      [cancelled.id, 'cancelled', undefined, null],
    ],
  );
  t.true(pending.failures[1]!.cause instanceof JobCancelledError);
  t.deepEqual(pending.releases, [shutdown]);
});
