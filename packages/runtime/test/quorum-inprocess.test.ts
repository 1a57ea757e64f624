/**
 * The quorum features on a single node with no NATS: the node's in-process bus carries job events,
 * results, roll call, cancel and raw quorum messages for node.client.
 */
import test from 'ava';
import { JobCancelledError, JobFailedError, ValidationError } from '@partita/core';
import { connect, requestGlobal, type GlobalRequest, type JobEvent } from '@partita/client';
import { defineJob, startNode, type PartitaNode } from '@partita/runtime';
import { subjects } from '@partita/nats';
import { freshSchema, sleep, type TestSchema, tempDataDir, until as pollUntil } from '../../../test/helpers/index.js';

const until = <T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000) =>
  pollUntil(what, probe, timeoutMs, 10);

let db: TestSchema;
let node: PartitaNode;
const started = new Map<string, number>();

test.before(async () => {
  db = await freshSchema('qinproc');
  node = await startNode({
    dataDir: tempDataDir('inprocess'),
    postgres: db.url,
    schema: db.schema,
    nats: false,
    cluster: 'solo',
    nodeId: 'solo-1',
    partitions: { main: { queues: { default: { concurrency: 4 }, other: { concurrency: 1 } } } },
    // Lease renewals, which also carry cancel requests to the engine, 20 s apart: a cancel that did
    // not come through the bus would take that long.
    engine: { pollMs: 2000, heartbeatMs: 20_000, leaseMs: 60_000 },
    log: { level: 'silent' },
    jobs: [
      defineJob({ type: 'echo', perform: (p: unknown) => p }),
      defineJob({ type: 'slow', perform: async (p: unknown) => (await sleep(1200), p) }),
      defineJob({ type: 'report.daily', queue: 'other', perform: () => ({ at: new Date('2031-01-01T00:00:00Z') }) }),
      defineJob({
        type: 'boom',
        perform() {
          throw new Error('boom');
        },
      }),
      defineJob<{ n: number }>({
        type: 'steps',
        async perform(p, ctx) {
          for (let i = 1; i <= p.n; i++) ctx.progress({ step: i });
          await sleep(20);
          return 'stepped';
        },
      }),
      defineJob({
        type: 'wait',
        perform: (_p, ctx) =>
          new Promise((_resolve, reject) => {
            started.set(ctx.id, Date.now());
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
          }),
      }),
    ],
  });
});

test.after.always(async () => {
  await node?.stop({ graceMs: 200 });
  await db?.drop();
});

test.serial('job events reach node.client subscribers, with the real type, results in stored form and progress', async (t) => {
  const got: JobEvent[] = [];
  const off = await node.client.subscribe('main.>', (e) => void got.push(e));
  const onlyReports: JobEvent[] = [];
  const off2 = await node.client.subscribe({ type: 'report.daily', kind: 'completed' }, (e) => void onlyReports.push(e));
  const a = await node.client.enqueue('main', 'echo', { hello: 'world' });
  const b = await node.client.enqueue('main', 'report.daily');
  const c = await node.client.enqueue('main', 'steps', { n: 3 });
  const d = await node.client.enqueue('main', 'boom');
  t.deepEqual(await node.client.result(a.id, { timeoutMs: 5000 }), { hello: 'world' });
  t.deepEqual(await node.client.result(b.id, { timeoutMs: 5000 }), { at: '2031-01-01T00:00:00.000Z' });
  t.is(await node.client.result(c.id, { timeoutMs: 5000 }), 'stepped');
  await t.throwsAsync(node.client.result(d.id, { timeoutMs: 5000 }), { instanceOf: JobFailedError, message: /boom/ });
  // 'enqueued' comes from the client, the rest from the node: they are not ordered with each other
  // (a node may claim the job before enqueue() returns), so compare sets.
  const seen = (id: string) =>
    got
      .filter((e) => e.id === id)
      .map((e) => e.kind)
      .sort();
  await until('all events', () => seen(d.id).includes('failed') && seen(c.id).includes('completed'));
  await sleep(50);
  t.deepEqual(seen(a.id), ['completed', 'enqueued', 'started']);
  t.deepEqual(seen(b.id), ['completed', 'enqueued', 'started']);
  t.deepEqual(seen(c.id).filter((k) => k === 'progress').length, 3);
  t.deepEqual(seen(d.id), ['enqueued', 'failed', 'started']);
  const completedB = got.find((e) => e.id === b.id && e.kind === 'completed')!;
  t.is(completedB.type, 'report.daily');
  t.is(completedB.queue, 'other');
  t.is(completedB.node, 'solo-1');
  t.is(completedB.attempt, 1);
  t.deepEqual(completedB.result, { at: '2031-01-01T00:00:00.000Z' }, 'the event carries what Postgres stored');
  t.true(completedB.at instanceof Date);
  t.deepEqual(
    got.filter((e) => e.id === c.id && e.kind === 'progress').map((e) => e.progress),
    [{ step: 1 }, { step: 2 }, { step: 3 }],
  );
  t.is(got.find((e) => e.id === d.id && e.kind === 'failed')!.error?.message, 'boom');
  t.deepEqual(
    onlyReports.map((e) => e.id),
    [b.id],
  );
  await off();
  await off2();
  const before = got.length;
  await node.client.result((await node.client.enqueue('main', 'echo', 1)).id, { timeoutMs: 5000 });
  await sleep(50);
  t.is(got.length, before, 'nothing after unsubscribe');
});

test.serial('result() resolves from the event well before the Postgres safety net, and times out as asked', async (t) => {
  // The safety net reads Postgres at once, then 1 s and 3 s after the call: a 1.2 s job resolved by
  // its completion event comes well before the 3 s read, with 1.6 s for a loaded machine's claim and
  // event (a 300 ms job against the 1 s read left 0.6 s).
  const { id } = await node.client.enqueue('main', 'slow', 'x');
  const t0 = Date.now();
  t.is(await node.client.result(id, { timeoutMs: 20_000 }), 'x');
  const took = Date.now() - t0;
  t.log(`result after ${took} ms of a 1200 ms job`);
  t.true(took >= 1150 && took < 2800, `took ${took} ms; the safety net would answer at 3000 ms`);
  const late = await node.client.enqueue('main', 'echo', 'y', { delayMs: 60_000 });
  await t.throwsAsync(node.client.result(late.id, { timeoutMs: 100 }), { name: 'TimeoutError' });
  await t.throwsAsync(node.client.result('00000000-0000-7000-8000-000000000000', { timeoutMs: 100 }), { instanceOf: ValidationError });
  t.true(await node.client.cancel(late.id));
});

test.serial('roll call: the node answers for itself', async (t) => {
  // Ends at the first answer (max); the window is only for a loaded machine (200 ms once missed it).
  const members = await node.client.rollCall({ delayMs: 10_000, max: 1 });
  t.is(members.length, 1);
  const m = members[0]!;
  t.is(m.id, 'solo-1');
  t.is(m.cluster, 'solo');
  t.deepEqual(m.partitions, ['main']);
  t.deepEqual(
    m.queues.map((q) => [q.partition, q.queue, q.concurrency]),
    [
      ['main', 'default', 4],
      ['main', 'other', 1],
    ],
  );
  t.is(m.running, 0);
  // The queued count waits at most 100 ms for Postgres (QUEUED_WAIT_MS), then goes out as the last
  // count or null, so a loaded machine's first answer may carry null (CI saw it); the count it started
  // serves a later roll call, which must then say 0.
  t.true(m.queued === 0 || m.queued === null, `queued ${m.queued}`);
  let queued = m.queued;
  for (let i = 0; i < 50 && queued === null; i++) {
    await new Promise((r) => setTimeout(r, 100));
    queued = (await node.client.rollCall({ delayMs: 10_000, max: 1 }))[0]!.queued;
  }
  t.is(queued, 0);
  t.is(m.throttleMs, 0);
  t.true(m.memory.rss > 0);
  t.true(m.uptimeMs > 0);
  t.true(typeof m.cpuPercent === 'number');
  t.regex(m.version, /^\d+\.\d+\.\d+/);
  t.is(m.pid, process.pid);
});

test.serial('cancel of a running job aborts it at once through the bus', async (t) => {
  const { id } = await node.client.enqueue('main', 'wait');
  await until('the job runs', () => started.get(id));
  const result = node.client.result(id, { timeoutMs: 30_000 });
  const t0 = Date.now();
  t.true(await node.client.cancel(id));
  await t.throwsAsync(result, { instanceOf: JobCancelledError });
  const tookMs = Date.now() - t0;
  t.log(`cancel → rejected result: ${tookMs} ms`);
  // Through the bus: well under the 20 s to the next renewal (430 ms at load 32; 500 ms was the bound).
  t.true(tookMs < 5000, `${tookMs} ms`);
  t.is((await node.client.job(id))?.state, 'cancelled');
});

test.serial('cancel of a queued job publishes a cancelled event and result() rejects', async (t) => {
  const got: JobEvent[] = [];
  const off = await node.client.subscribe({ kind: 'cancelled' }, (e) => void got.push(e));
  const { id } = await node.client.enqueue('main', 'echo', 1, { delayMs: 60_000 });
  const waiting = node.client.result(id, { timeoutMs: 5000 });
  await sleep(50);
  t.true(await node.client.cancel(id));
  await t.throwsAsync(waiting, { instanceOf: JobCancelledError });
  await until('cancelled event', () => got.length === 1);
  t.is(got[0]!.id, id);
  await off();
});

test.serial('raw quorum messages round trip on the in-process bus', async (t) => {
  const got: [unknown, string][] = [];
  const off = await node.client.subscribeQuorum('deploy.*', (data, topic) => void got.push([data, topic]));
  node.client.publishQuorum('deploy.started', { version: 3 });
  node.client.publishQuorum('other.thing', 1);
  await until('message', () => got.length === 1);
  await sleep(30);
  t.deepEqual(got, [[{ version: 3 }, 'deploy.started']]);
  await off();
});

test.serial('roll call reports pause and throttle as the engine obeys them (set through Global)', async (t) => {
  const global = (request: GlobalRequest) => requestGlobal(node.bus, 'solo', 'main', request);
  const stats = async () => (await node.stats())[0]!;
  await global({ op: 'pause', queue: 'other' });
  await until('paused', async () => (await stats()).paused.includes('other'));
  await global({ op: 'throttle', rule: { ms: -1 } });
  await until('stopped', async () => (await stats()).throttleMs === -1);
  const { id } = await node.client.enqueue('main', 'echo', 'held');
  await sleep(300);
  t.is((await node.client.job(id))?.state, 'queued', 'nothing is claimed while stopped');
  // The queued count is cached for a second.
  const members = await until('the held job counted', async () => {
    const m = await node.client.rollCall({ delayMs: 10_000, max: 1 });
    return m[0]?.queued === 1 ? m : undefined;
  });
  t.is(members[0]!.throttleMs, -1);
  // A stop (-1) stops claims of every queue, so each reports as paused.
  t.deepEqual(
    members[0]!.queues.map((q) => [q.queue, q.paused, q.throttleMs, q.queued]),
    [
      ['default', true, -1, 1],
      ['other', true, -1, 0],
    ],
  );
  await global({ op: 'throttle', rule: { ms: 0 } });
  await global({ op: 'resume', queue: 'other' });
  t.is(await node.client.result(id, { timeoutMs: 3000 }), 'held');
  await until('resumed', async () => (await stats()).paused.length === 0);
  // Malformed control broadcasts are dropped; the engine keeps its state and is not restarted.
  const engine = node.system.whereis('engine:main');
  for (const bad of [
    { partition: 'main', paused: 5, throttles: 'x' },
    { partition: 'main', paused: [], throttles: [null] },
    { partition: 'main', paused: [], throttles: [{ ms: 'soon' }] },
    { partition: 'main', paused: [7], throttles: [{ ms: 1.5 }] },
  ]) {
    node.bus.publish(subjects.pause('solo', 'main'), 'control', bad);
  }
  await sleep(100);
  const after = await stats();
  t.deepEqual({ paused: after.paused, throttleMs: after.throttleMs }, { paused: [], throttleMs: 0 });
  t.is(node.system.whereis('engine:main'), engine, 'the engine did not crash and restart');
  t.is(await node.client.result((await node.client.enqueue('main', 'echo', 'still')).id, { timeoutMs: 3000 }), 'still');
});

test('a client connected without NATS polls Postgres for results, calls the roll from Postgres and refuses bus features clearly', async (t) => {
  const client = await connect({ postgres: db.url, schema: db.schema, cluster: 'solo' });
  t.teardown(() => client.close());
  const { id } = await client.enqueue('main', 'echo', 'polled');
  t.is(await client.result(id, { timeoutMs: 5000 }), 'polled');
  t.deepEqual(
    (await client.rollCall()).map((m) => m.id),
    [node.id],
    'from the nodes table',
  );
  await t.throwsAsync(
    client.subscribe('>', () => undefined),
    { instanceOf: ValidationError },
  );
  t.throws(() => client.publishQuorum('x', 1), { instanceOf: ValidationError });
});
