/**
 * Pause/throttle changes made in Postgres (one change on the row as it is, never a whole state
 * over another writer's), and the notifications nodes LISTEN for.
 */
import test, { type ExecutionContext } from 'ava';
import { JobStore, Notices, notifyChannel, parseNotice, type Notice } from '@partita/postgres';
import { freshSchema } from '../../../test/helpers/index.js';

test('notices: payloads round trip; channel names fit Postgres whatever the schema', (t) => {
  t.deepEqual(parseNotice('wake:billing:a,b'), { kind: 'wake', partition: 'billing', queues: ['a', 'b'] });
  t.deepEqual(parseNotice('wake:billing:'), { kind: 'wake', partition: 'billing', queues: undefined });
  t.deepEqual(parseNotice('control:billing'), { kind: 'control', partition: 'billing' });
  t.deepEqual(parseNotice('rollcall'), { kind: 'rollcall' });
  for (const bad of [undefined, '', 'wake', 'other:x', 'control:']) t.is(parseNotice(bad), undefined, String(bad));
  t.is(notifyChannel('partita'), 'partita_partita');
  const long = 'x'.repeat(63);
  t.regex(notifyChannel(long), /^partita_[0-9a-f]{32}$/);
  t.not(notifyChannel(long), notifyChannel('y'.repeat(63)));
});

test('changes apply to the row as it is: concurrent pauses, resumes and throttles all land; each bumps the version; a listener hears each', async (t) => {
  const db = await freshSchema('control');
  const store = await JobStore.open({ postgres: db.url, schema: db.schema });
  const heard: Notice[] = [];
  const notices = await Notices.start({ connection: { connectionString: db.url }, schema: db.schema, onNotice: (n) => heard.push(n) });
  t.teardown(async () => {
    await notices.close();
    await store.close();
    await db.drop();
  });
  t.deepEqual(await store.loadControl('p'), { paused: [], throttles: [], version: 0 });

  // Twenty writers at once, none of them reading first: every change lands.
  const queues = Array.from({ length: 20 }, (_, i) => `q${String(i).padStart(2, '0')}`);
  await Promise.all(queues.map((queue) => store.changeControl('p', { op: 'pause', queue })));
  let row = await store.loadControl('p');
  t.deepEqual(row.paused, queues);
  t.is(row.version, 20);
  await Promise.all([
    store.changeControl('p', { op: 'resume', queue: 'q00' }),
    store.changeControl('p', { op: 'throttle', ms: -1, queue: 'q01' }),
    store.changeControl('p', { op: 'throttle', ms: 250 }),
    store.changeControl('p', { op: 'throttle', ms: 40, node: 'n1', queue: 'q02' }),
  ]);
  row = await store.loadControl('p');
  t.deepEqual(row.paused, queues.slice(1));
  t.deepEqual(
    [...row.throttles].sort((a, b) => a.ms - b.ms),
    [{ ms: -1, queue: 'q01' }, { ms: 40, queue: 'q02', node: 'n1' }, { ms: 250 }],
  );
  // A throttle replaces the rule of the same target; 0 removes it; a pause twice is one pause.
  await store.changeControl('p', { op: 'throttle', ms: 500 });
  await store.changeControl('p', { op: 'throttle', ms: 0, queue: 'q01' });
  const last = await store.changeControl('p', { op: 'pause', queue: 'q05' });
  t.deepEqual(
    [...last.throttles].sort((a, b) => a.ms - b.ms),
    [{ ms: 40, queue: 'q02', node: 'n1' }, { ms: 500 }],
  );
  t.deepEqual(last.paused, queues.slice(1));
  t.is(last.version, 27);

  // A new leader keeps the row (its snapshot's copy does not overwrite it); a partition without one gets the snapshot's.
  const adopted = await store.adoptControl('p', { paused: [], throttles: [] }, 7);
  t.deepEqual(adopted, last);
  t.deepEqual(await store.adoptControl('fresh', { paused: ['x'], throttles: [{ ms: 5 }] }, 1), {
    paused: ['x'],
    throttles: [{ ms: 5 }],
    version: 1,
  });

  await store.notifyEnqueued('p', new Set(['q03', 'q04']));
  await store.requestRollCall();
  await new Promise((r) => setTimeout(r, 200));
  t.is(heard.filter((n) => n.kind === 'control').length, 27, 'a notice per change');
  t.deepEqual(heard.slice(-2), [{ kind: 'wake', partition: 'p', queues: ['q03', 'q04'] }, { kind: 'rollcall' }]);
});

/** A store in a fresh schema with `queues` of partition `p` registered by node n1. */
async function storeWithQueues(t: ExecutionContext, name: string, queues: string[]): Promise<JobStore> {
  const db = await freshSchema(name);
  const store = await JobStore.open({ postgres: db.url, schema: db.schema });
  t.teardown(async () => {
    await store.close();
    await db.drop();
  });
  await store.registerQueues(
    'n1',
    queues.map((queue) => ({ partition: 'p', queue, concurrency: 10 })),
  );
  return store;
}

test('the claims and the key settle obey the control row as it is, whatever the claiming engine has heard: paused and stopped queues give nothing', async (t) => {
  const queues = ['a', 'b', 'c', 'd'];
  const store = await storeWithQueues(t, 'control_claim', queues);
  const enqueueAll = () => store.enqueue(queues.map((queue) => ({ partition: 'p', queue, type: 'j' })));
  const claimed = async (nodeId: string) =>
    (
      await store.claimCounted({
        nodeId,
        partition: 'p',
        leaseMs: 30_000,
        queues: queues.map((queue) => ({ queue, limit: 10 })),
      })
    ).jobs
      .map((j) => j.queue)
      .sort();
  const claimedLimited = async (nodeId: string) =>
    (
      await store.claimRateLimited({
        nodeId,
        partition: 'p',
        leaseMs: 30_000,
        queues: queues.map((queue) => ({ queue, limit: 10, rateLimit: 100, periodMs: 60_000 })),
      })
    ).jobs
      .map((j) => j.queue)
      .sort();

  // a: paused. b: stopped on node n1 only. c: stopped everywhere, but a more specific rule for n1
  // throttles it to 10 ms (it claims there). d: free.
  await store.changeControl('p', { op: 'pause', queue: 'a' });
  await store.changeControl('p', { op: 'throttle', ms: -1, queue: 'b', node: 'n1' });
  await store.changeControl('p', { op: 'throttle', ms: -1, queue: 'c' });
  await store.changeControl('p', { op: 'throttle', ms: 10, node: 'n1' });
  await store.changeControl('p', { op: 'throttle', ms: 10, node: 'n1', queue: 'c' });
  await enqueueAll();
  t.deepEqual(await claimed('n1'), ['c', 'd']);
  t.deepEqual(await claimed('n2'), ['b']);
  await enqueueAll();
  t.deepEqual(await claimedLimited('n1'), ['c', 'd'], 'the rate-limited claim too');
  t.deepEqual(await claimedLimited('n2'), ['b']);

  // A partition-wide stop holds every queue; resumed and lifted, the held jobs are claimed in order.
  await store.changeControl('p', { op: 'throttle', ms: -1 });
  await store.changeControl('p', { op: 'throttle', ms: 0, node: 'n1' });
  await store.changeControl('p', { op: 'throttle', ms: 0, node: 'n1', queue: 'c' });
  await enqueueAll();
  t.deepEqual(await claimed('n2'), []);
  await store.changeControl('p', { op: 'throttle', ms: 0 });
  await store.changeControl('p', { op: 'throttle', ms: 0, queue: 'c' });
  await store.changeControl('p', { op: 'throttle', ms: 0, queue: 'b', node: 'n1' });
  await store.changeControl('p', { op: 'resume', queue: 'a' });
  t.deepEqual(await claimed('n1'), ['a', 'a', 'a', 'b', 'c', 'd']);

  // A completion that takes a key's next job into this node's hands takes it only if its queue is not paused.
  const [head, next] = await store.enqueue([
    { partition: 'p', queue: 'a', type: 'j', executionKey: 'k' },
    { partition: 'p', queue: 'a', type: 'j', executionKey: 'k' },
  ]);
  const [running] = await store
    .claimCounted({ nodeId: 'n1', partition: 'p', leaseMs: 30_000, queues: [{ queue: 'a', limit: 1 }] })
    .then((r) => r.jobs);
  t.is(running?.id, head!.id);
  await store.changeControl('p', { op: 'pause', queue: 'a' });
  const settled = await store.complete('n1', [{ id: head!.id, attempt: 1, result: null }], undefined, {
    take: { leaseMs: 30_000, types: null, continuations: null, ids: new Set([head!.id]) },
  });
  t.deepEqual(settled.settled.taken, [], 'a paused queue: the next job is queued, not taken');
  t.is((await store.getJob(next!.id))?.state, 'queued');
  t.deepEqual(await claimed('n1'), []);

  // And only if its queue is not stopped on this node.
  const [head2, next2] = await store.enqueue([
    { partition: 'p', queue: 'c', type: 'j', executionKey: 'k2' },
    { partition: 'p', queue: 'c', type: 'j', executionKey: 'k2' },
  ]);
  const [running2] = await store
    .claimCounted({ nodeId: 'n1', partition: 'p', leaseMs: 30_000, queues: [{ queue: 'c', limit: 1 }] })
    .then((r) => r.jobs);
  t.is(running2?.id, head2!.id);
  await store.changeControl('p', { op: 'throttle', ms: -1, queue: 'c', node: 'n1' });
  const completed = await store.complete('n1', [{ id: head2!.id, attempt: 1, result: null }], undefined, {
    take: { leaseMs: 30_000, types: null, continuations: null, ids: new Set([head2!.id]) },
  });
  t.deepEqual(completed.settled.taken, [], 'a queue stopped on this node: the next job is queued, not taken');
  t.deepEqual(completed.settled.queues, ['c']);
  t.is((await store.getJob(next2!.id))?.state, 'queued');
});

test('a hand-off and a leased enqueue obey the control row as it is: a job of a stopped queue is stored queued, never leased, and claimed once the queue runs', async (t) => {
  const queues = ['a', 'b', 'c'];
  const store = await storeWithQueues(t, 'control_leased', queues);
  // a: paused. b: stopped on n1 only. c: free.
  await store.changeControl('p', { op: 'pause', queue: 'a' });
  await store.changeControl('p', { op: 'throttle', ms: -1, queue: 'b', node: 'n1' });
  const stateOf = async (id: string) => (await store.getJob(id))?.state;

  const handed = await Promise.all(queues.map((queue) => store.enqueueHandedOff({ partition: 'p', queue, type: 'j' }, 'n1', 30_000)));
  t.deepEqual(
    handed.map((h) => h.claimed?.queue ?? null),
    [null, null, 'c'],
    'only the free queue hands off',
  );
  t.deepEqual(await Promise.all(handed.map((h) => stateOf(h.id))), ['queued', 'queued', 'running']);
  const toN2 = await store.enqueueHandedOff({ partition: 'p', queue: 'b', type: 'j' }, 'n2', 30_000);
  t.is(toN2.claimed?.attempt, 1, 'b is stopped on n1 only');

  const leased = await store.withTransaction((tx) =>
    tx.enqueueLeased(
      queues.flatMap((queue) => [
        { partition: 'p', queue, type: 'j' },
        { partition: 'p', queue, type: 'j', payload: { second: true } },
      ]),
      'n1',
      30_000,
    ),
  );
  t.deepEqual(
    leased.map((l) => l.claimed?.queue ?? null),
    [null, null, null, null, 'c', 'c'],
    'the leased enqueue keeps its positions',
  );
  t.deepEqual(await Promise.all(leased.map((l) => stateOf(l.id))), ['queued', 'queued', 'queued', 'queued', 'running', 'running']);

  // Still queued while stopped; claimed, each once, when the queue runs again.
  const claim = async () =>
    (await store.claimCounted({ nodeId: 'n1', partition: 'p', leaseMs: 30_000, queues: queues.map((queue) => ({ queue, limit: 10 })) }))
      .jobs;
  t.deepEqual(await claim(), []);
  await store.changeControl('p', { op: 'resume', queue: 'a' });
  await store.changeControl('p', { op: 'throttle', ms: 0, queue: 'b', node: 'n1' });
  const later = await claim();
  t.deepEqual(later.map((j) => j.id).sort(), [handed[0]!.id, handed[1]!.id, ...leased.slice(0, 4).map((l) => l.id)].sort());
  t.true(
    later.every((j) => j.attempt === 1),
    'an attempt is counted once, at the claim',
  );
});
