import test from 'ava';
import { silentLogger } from '@partita/core';
import { InProcessBus } from '@partita/nats';
import type { ClaimedJob } from '@partita/postgres';
import { jobEventsOf, type JobEvent } from '@partita/protocol';
import type { EngineEvent } from '../src/engine/messages.js';
import { jobEventPublisher } from '../src/events.js';

const job = (id: string, queue = 'q', attempt = 1): ClaimedJob => ({
  id,
  partition: 'p',
  queue,
  type: 't.x',
  payload: null,
  priority: 0,
  attempt,
  maxAttempts: 3,
  timeoutMs: null,
  queueKey: null,
  executionKey: null,
  cancelRequested: false,
  traceparent: null,
});

async function published(events: EngineEvent[]): Promise<{ kind: string; subject: string; events: JobEvent[] }[]> {
  const bus = new InProcessBus({ cluster: 'c' });
  const got: { kind: string; subject: string; events: JobEvent[] }[] = [];
  const off = await bus.subscribe(
    'partita.c.event.>',
    (data, msg) => void got.push({ kind: msg.kind, subject: msg.subject, events: jobEventsOf(data, msg.kind) }),
  );
  const publish = jobEventPublisher({ bus, nodeId: 'node-1', logger: silentLogger() });
  for (const e of events) publish(e);
  // Delivery is asynchronous: wait until the events (one message each at most) stop coming.
  for (let seen = -1, i = 0; (got.length === 0 || seen !== got.length) && i < 100; i++) {
    seen = got.length;
    await new Promise((r) => setTimeout(r, 100));
  }
  await off();
  await bus.close();
  return got;
}

test("a node's job events of one turn go out one message per subject, each event whole once unpacked", async (t) => {
  const retryAt = new Date(Date.now() + 60_000);
  const error = { name: 'Error', message: 'boom' };
  const got = await published([
    { kind: 'started', job: job('a') },
    { kind: 'started', job: job('b') },
    { kind: 'started', job: job('c', 'other') },
    { kind: 'completed', job: job('a'), result: { n: 1 } },
    { kind: 'started', job: job('d') },
    { kind: 'completed', job: job('b'), result: undefined },
    { kind: 'retrying', job: job('c', 'other', 2), error: error as never, retryAt },
    { kind: 'progress', job: job('d'), progress: 0.5 },
  ]);
  const bySubject = new Map(got.map((g) => [g.subject.split('.').slice(3).join('.'), g]));
  t.deepEqual([...bySubject.keys()].sort(), [
    'p.other.t%2Ex.retrying',
    'p.other.t%2Ex.started',
    'p.q.t%2Ex.completed',
    'p.q.t%2Ex.progress',
    'p.q.t%2Ex.started',
  ]);
  // Several events of a subject: one batch message, in the order they happened.
  t.is(bySubject.get('p.q.t%2Ex.started')!.kind, 'job.started.batch');
  t.deepEqual(
    bySubject.get('p.q.t%2Ex.started')!.events.map((e) => e.id),
    ['a', 'b', 'd'],
  );
  const completed = bySubject.get('p.q.t%2Ex.completed')!.events;
  t.deepEqual(
    completed.map((e) => [e.id, e.kind, e.attempt, e.result, e.node, e.partition, e.queue, e.type]),
    [
      ['a', 'completed', 1, { n: 1 }, 'node-1', 'p', 'q', 't.x'],
      ['b', 'completed', 1, null, 'node-1', 'p', 'q', 't.x'],
    ],
  );
  t.true(completed[0]!.at instanceof Date);
  // One event of a subject: a plain event message.
  t.is(bySubject.get('p.other.t%2Ex.started')!.kind, 'job.started');
  const [retrying] = bySubject.get('p.other.t%2Ex.retrying')!.events;
  t.is(retrying!.attempt, 2);
  t.deepEqual(retrying!.error, error);
  t.is(retrying!.retryAt!.getTime(), retryAt.getTime());
  t.is(bySubject.get('p.q.t%2Ex.progress')!.events[0]!.progress, 0.5);
});

test('a turn with more events of a subject than a batch message holds sends them all, in order', async (t) => {
  const ids = Array.from({ length: 600 }, (_, i) => `j${i}`);
  const got = await published(ids.map((id) => ({ kind: 'completed', job: job(id), result: null })));
  t.true(got.length >= 3);
  t.deepEqual(
    got.flatMap((g) => g.events.map((e) => e.id)),
    ids,
  );
});

test('a result that is not JSON goes out without it, marked truncated', async (t) => {
  const circular: { self?: unknown } = {};
  circular.self = circular;
  const got = await published([
    { kind: 'completed', job: job('a'), result: circular },
    { kind: 'completed', job: job('b'), result: 'fine' },
  ]);
  const events = got.flatMap((g) => g.events);
  t.deepEqual(
    events.map((e) => [e.id, e.result, e.truncated]),
    [
      ['a', undefined, true],
      ['b', 'fine', undefined],
    ],
  );
});
