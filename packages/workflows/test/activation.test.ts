/**
 * Workflow version activation over a real nats-server and Postgres: members in this process (each
 * with its own bus connection) and in separate processes (fixtures/activation-member.ts). The flip
 * writes a row of the test's schema; members stand in for the executor by reading it.
 */
import test from 'ava';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { connectNatsBus, type NatsBus } from '@partita/nats';
import { subjects, WF_INFLIGHT_KIND, WF_NOCACHE_KIND, WF_ROLL_CALL_KIND, WF_ACTIVATED_KIND } from '@partita/protocol';
import {
  ActivationInProgressError,
  QuorumNotReachedError,
  runActivation,
  startActivationMember,
  type ActivationMember,
} from '../src/index.js';
import {
  capturingLogger,
  freshSchema,
  natsUrl,
  spawnNode,
  startNats,
  until,
  type SpawnedNode,
  type TestSchema,
} from '../../../test/helpers/index.js';

const fixture = path.join(import.meta.dirname, 'fixtures', 'activation-member.ts');
const APP = 'demo';

interface Net {
  cluster: string;
  db: TestSchema;
  url: string;
  bus(): Promise<NatsBus>;
  setActive(version: string): Promise<void>;
  active(): Promise<string | null>;
}

async function network(t: import('ava').ExecutionContext): Promise<Net> {
  const [db, url] = await Promise.all([freshSchema('wfact'), natsUrl()]);
  await db.pool.query(`CREATE TABLE "${db.schema}".active (app text PRIMARY KEY, version text NOT NULL)`);
  await db.pool.query(`INSERT INTO "${db.schema}".active VALUES ($1, '1')`, [APP]);
  const cluster = `wfa${randomBytes(4).toString('hex')}`;
  const buses: NatsBus[] = [];
  t.teardown(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await db.drop();
  });
  return {
    cluster,
    db,
    url,
    async bus() {
      const b = await connectNatsBus({ servers: url, cluster, reconnectTimeWait: 100, connectRetryMs: 100 });
      buses.push(b);
      return b;
    },
    async setActive(version) {
      await db.pool.query(`UPDATE "${db.schema}".active SET version = $2 WHERE app = $1`, [APP, version]);
    },
    async active() {
      return (
        (await db.pool.query<{ version: string }>(`SELECT version FROM "${db.schema}".active WHERE app = $1`, [APP])).rows[0]?.version ??
        null
      );
    },
  };
}

/**
 * What an executor does with the hooks: caches the active version; in nocache mode reads Postgres on
 * every use until it sees the awaited version. `events` records each hook call with the version the
 * executor would use at that moment.
 */
interface Stand {
  id: string;
  member: ActivationMember;
  events: string[];
  /** The version a new workflow would start on now. */
  current(): Promise<string | null>;
}

async function standIn(
  net: Net,
  id: string,
  opts: { failNocache?: boolean; logger?: import('@partita/core').Logger; inflightDelayMs?: number } = {},
): Promise<Stand> {
  const bus = await net.bus();
  let cached: string | null = null;
  let until: string | undefined;
  const events: string[] = [];
  const current = async () => {
    if (until === undefined && cached !== null) return cached;
    const v = await net.active();
    if (until === undefined || v === until) {
      until = undefined;
      cached = v;
    }
    return v;
  };
  const member = await startActivationMember({
    bus,
    cluster: net.cluster,
    nodeId: id,
    logger: opts.logger ?? capturingLogger('warn').logger,
    inflightDelayMs: opts.inflightDelayMs ?? 500,
    onNocache(app, version) {
      if (opts.failNocache) throw new Error('this node cannot switch');
      events.push(`nocache ${app} ${version}`);
      until = version;
    },
    async onActivated(app, version) {
      events.push(`activated ${app} ${version} sees ${await current()}`);
    },
    async onAbandon(app, version) {
      until = undefined;
      cached = await net.active();
      events.push(`abandon ${app} ${version} sees ${cached}`);
    },
    async onReconnect() {
      cached = await net.active();
      events.push(`reconnect sees ${cached}`);
    },
  });
  return { id, member, events, current };
}

function spawnMember(net: Net, id: string, inflightDelayMs = 500): SpawnedNode {
  return spawnNode(fixture, {
    env: {
      ACT_NATS: net.url,
      ACT_CLUSTER: net.cluster,
      ACT_NODE_ID: id,
      ACT_PG: net.db.url,
      ACT_SCHEMA: net.db.schema,
      ACT_INFLIGHT_MS: String(inflightDelayMs),
    },
  });
}

const lines = (p: SpawnedNode) =>
  p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function stopProcess(p: SpawnedNode) {
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
  await p.exited;
  clearTimeout(timer);
}

test('activation reaches every member, in process and in another process, and flips once between nocache and activated', async (t) => {
  const net = await network(t);
  const stands = await Promise.all(['a', 'b', 'c'].map((id) => standIn(net, id)));
  const proc = spawnMember(net, 'p');
  t.teardown(() => stopProcess(proc));
  await proc.waitForOutput('"ready"', { timeoutMs: 60_000 });
  t.true(stands.every((s) => s.events[0] === 'reconnect sees 1'));

  const activator = await net.bus();
  let flips = 0;
  const result = await runActivation({
    bus: activator,
    cluster: net.cluster,
    logger: capturingLogger('warn').logger,
    appId: APP,
    version: '2',
    // Roll calls long enough for every member's answer on a loaded machine (a 100 ms one missed one
    // there). An answer that misses a round anyway only costs a round: how many is not the point.
    delayMs: 1000,
    flip: async () => {
      flips++;
      // Every member acknowledged nocache before the flip: each would read Postgres from here on.
      t.true(stands.every((s) => s.events.includes(`nocache ${APP} 2`)));
      await net.setActive('2');
    },
  });
  t.is(flips, 1);
  t.deepEqual(result.members, ['a', 'b', 'c', 'p']);
  t.deepEqual(result.acknowledged, ['a', 'b', 'c', 'p']);
  t.deepEqual(result.missing, []);
  t.log(`${result.rounds} round(s) of roll call`);
  for (const s of stands) {
    t.deepEqual(s.events, ['reconnect sees 1', `nocache ${APP} 2`, `activated ${APP} 2 sees 2`]);
    t.is(await s.current(), '2');
    t.deepEqual([...s.member.nocache()], []);
  }
  // The other process read Postgres when it entered nocache (before the flip) and when it heard activated.
  await until('p heard activated', () => lines(proc).find((l) => l.ev === 'activated'), 30_000);
  t.like(
    lines(proc).find((l) => l.ev === 'nocache'),
    { app: APP, version: '2', active: '1' },
  );
  t.like(
    lines(proc).find((l) => l.ev === 'activated'),
    { app: APP, version: '2', active: '2' },
  );
  await Promise.all(stands.map((s) => s.member.stop()));
});

test('a member that starts mid-activation (in process and in another process) enters nocache before reading, and ends on the new version', async (t) => {
  const net = await network(t);
  const early = await standIn(net, 'early');
  const activator = await net.bus();
  let release!: () => void;
  const flipGate = new Promise<void>((r) => (release = r));
  let flipping!: () => void;
  const flipStarted = new Promise<void>((r) => (flipping = r));
  const run = runActivation({
    bus: activator,
    cluster: net.cluster,
    logger: capturingLogger('warn').logger,
    appId: APP,
    version: '2',
    delayMs: 100,
    // The flip waits while two members join (a process start among them): on a loaded machine that
    // may outlast the default 30 s, after which the members would give nocache up.
    nocacheMs: 120_000,
    flip: async () => {
      flipping();
      await flipGate;
      await net.setActive('2');
    },
  });
  await flipStarted;
  // Joins after the roll call and the nocache broadcast, before the flip: HotMesh's stale-forever case.
  // The flip waits for the test, so the joiners may listen for in-flight activations longer than a
  // node's 500 ms: on a loaded machine the activator's answer came later than that (and later than
  // the 3 s these had once).
  const late = await standIn(net, 'late', { inflightDelayMs: 6000 });
  t.deepEqual(late.events, [`nocache ${APP} 2`, 'reconnect sees 1']);
  t.deepEqual([...late.member.nocache()], [[APP, '2']]);
  const proc = spawnMember(net, 'late-proc', 6000);
  t.teardown(() => stopProcess(proc));
  await proc.waitForOutput('"ready"', { timeoutMs: 60_000 });
  const procEvents = lines(proc).map((l) => l.ev);
  t.deepEqual(procEvents.slice(0, 2), ['nocache', 'reconnect']);
  t.is(await late.current(), '1'); // still the old one: Postgres has not flipped
  release();
  const result = await run;
  // The joiners were not in the roll call; the acks the activator waits for are the members'.
  t.deepEqual(result.members, ['early']);
  t.deepEqual(result.missing, []);
  await until('late heard activated', () => late.events.includes(`activated ${APP} 2 sees 2`), 30_000);
  // In nocache mode the first read after the flip already sees it, with or without `activated`.
  t.is(await late.current(), '2');
  t.is(await early.current(), '2');
  await until('late-proc heard activated', () => lines(proc).find((l) => l.ev === 'activated'), 30_000);
  t.like(
    lines(proc).find((l) => l.ev === 'activated'),
    { version: '2', active: '2' },
  );
  await Promise.all([early.member.stop(), late.member.stop()]);
});

test('a member that starts after the flip reads the new version at once (no activation to hear about)', async (t) => {
  const net = await network(t);
  await standIn(net, 'x');
  const activator = await net.bus();
  await runActivation({
    bus: activator,
    cluster: net.cluster,
    logger: capturingLogger('warn').logger,
    appId: APP,
    version: '3',
    delayMs: 500, // long enough for the member's answers on a loaded machine
    flip: () => net.setActive('3'),
  });
  const after = await standIn(net, 'after');
  t.deepEqual(after.events, ['reconnect sees 3']);
  t.is(await after.current(), '3');
});

test('no member answers: QuorumNotReachedError after the retries, and flip is never called', async (t) => {
  const net = await network(t);
  const activator = await net.bus();
  let flipped = false;
  const started = Date.now();
  const err = await t.throwsAsync(
    runActivation({
      bus: activator,
      cluster: net.cluster,
      logger: capturingLogger('warn').logger,
      appId: APP,
      version: '2',
      retries: 1,
      delayMs: 20,
      flip: async () => {
        flipped = true;
      },
    }),
    { instanceOf: QuorumNotReachedError },
  );
  t.false(flipped);
  t.is(err?.attempts, 2);
  t.deepEqual(err?.counts, [0, 0, 0]);
  t.regex(err!.message, /no workflow node answered.*activate again/s);
  t.is(await net.active(), '1');
  // It gives up after its two attempts (a fraction of a second here) rather than waiting on: the
  // bound is only generous, for a loaded machine.
  t.log(`gave up after ${Date.now() - started} ms`);
  t.true(Date.now() - started < 30_000);
});

test('a member that cannot ack nocache: no flip, the others are told to abandon, QuorumNotReachedError', async (t) => {
  const net = await network(t);
  const good = await standIn(net, 'good');
  await standIn(net, 'bad', { failNocache: true });
  const activator = await net.bus();
  let flipped = false;
  const err = await t.throwsAsync(
    runActivation({
      bus: activator,
      cluster: net.cluster,
      logger: capturingLogger('warn').logger,
      appId: APP,
      version: '2',
      retries: 1,
      delayMs: 1000, // roll calls long enough for both members to answer on a loaded machine (250 ms was not, once)
      flip: async () => {
        flipped = true;
      },
    }),
    { instanceOf: QuorumNotReachedError },
  );
  t.false(flipped);
  t.regex(err!.message, /bad did not acknowledge nocache/);
  t.deepEqual(err?.counts, [2, 2, 2]);
  await until('good heard abandon twice', () => good.events.filter((e) => e.startsWith('abandon')).length === 2, 20_000);
  t.deepEqual(good.events, [
    'reconnect sees 1',
    `nocache ${APP} 2`,
    `abandon ${APP} 2 sees 1`,
    `nocache ${APP} 2`,
    `abandon ${APP} 2 sees 1`,
  ]);
  t.deepEqual([...good.member.nocache()], []);
  t.is(await good.current(), '1');
});

test('a second activator of the same app while one runs gets ActivationInProgressError', async (t) => {
  const net = await network(t);
  await standIn(net, 'm');
  const [a, b] = await Promise.all([net.bus(), net.bus()]);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let flipping!: () => void;
  const flipStarted = new Promise<void>((r) => (flipping = r));
  const first = runActivation({
    bus: a,
    cluster: net.cluster,
    logger: capturingLogger('warn').logger,
    appId: APP,
    version: '2',
    delayMs: 500, // long enough for the member's answers on a loaded machine
    flip: async () => {
      flipping();
      await gate;
      await net.setActive('2');
    },
  });
  await flipStarted;
  const err = await t.throwsAsync(
    runActivation({
      bus: b,
      cluster: net.cluster,
      logger: capturingLogger('warn').logger,
      appId: APP,
      version: '3',
      delayMs: 50,
      flip: () => net.setActive('3'),
    }),
    { instanceOf: ActivationInProgressError },
  );
  t.regex(err!.message, /being activated to version "2"/);
  release();
  await first;
  t.is(await net.active(), '2');
});

test('an activator whose in-flight answer comes late (a busy process) still stops a second one: ActivationInProgressError, nothing flipped', async (t) => {
  const net = await network(t);
  await standIn(net, 'm');
  // The first activator, as a busy process would answer: 800 ms after the question (a loaded
  // machine let a second activator past a real one whose answer missed the 500 ms it was given).
  const busy = await net.bus();
  await busy.subscribe(
    subjects.wfActivations(net.cluster),
    async () => {
      await new Promise((r) => setTimeout(r, 800));
      return { activations: [{ activation: 'busy-one', app: APP, version: '2', phase: 'nocache', expiresInMs: 30_000 }] };
    },
    { kinds: [WF_INFLIGHT_KIND] },
  );
  let flipped = false;
  const err = await t.throwsAsync(
    runActivation({
      bus: await net.bus(),
      cluster: net.cluster,
      logger: capturingLogger('warn').logger,
      appId: APP,
      version: '3',
      delayMs: 50,
      flip: async () => {
        flipped = true;
      },
    }),
    { instanceOf: ActivationInProgressError },
  );
  t.regex(err!.message, /being activated to version "2"/);
  t.false(flipped);
  t.is(await net.active(), '1');
});

test('a member whose switch failed acknowledges no repeat of that nocache, and keeps no nocache mode', async (t) => {
  const net = await network(t);
  const bad = await standIn(net, 'bad', { failNocache: true });
  const good = await standIn(net, 'good');
  const sender = await net.bus();
  const notice = { activation: 'a1', app: APP, version: '2', expiresInMs: 30_000 };
  // As the activator repeats a nocache to the members it has no ack from: the same activation twice.
  for (const round of [1, 2]) {
    const acks = await sender.gather<{ node: string }>(subjects.wfActivate(net.cluster), WF_NOCACHE_KIND, notice, {
      delayMs: 1000,
      max: 2,
    });
    t.deepEqual(
      acks.map((a) => a.node),
      ['good'],
      `round ${round}: only the member that switched acknowledges`,
    );
  }
  t.deepEqual([...bad.member.nocache()], [], 'the failed switch left no nocache mode behind');
  t.deepEqual([...good.member.nocache()], [[APP, '2']]);
  t.deepEqual(
    good.events.filter((e) => e.startsWith('nocache')),
    [`nocache ${APP} 2`],
    'the repeat is acknowledged, not acted on twice',
  );
});

test('a nocache whose activator goes silent expires: the member reads the active version again', async (t) => {
  const net = await network(t);
  const m = await standIn(net, 'm');
  const sender = await net.bus();
  sender.publish(subjects.wfActivate(net.cluster), WF_NOCACHE_KIND, { activation: 'gone', app: APP, version: '9', expiresInMs: 150 });
  await until('nocache', () => m.member.nocache().get(APP) === '9', 20_000);
  await until('expired', () => m.events.includes(`abandon ${APP} 9 sees 1`), 20_000);
  t.deepEqual([...m.member.nocache()], []);
});

test('malformed activation messages are logged and dropped; malformed answers do not count', async (t) => {
  const net = await network(t);
  const { logger, lines: logs } = capturingLogger('warn');
  const m = await standIn(net, 'm', { logger });
  const rogue = await net.bus();
  // A responder that answers everything with garbage: the activator must not count it as a member.
  await rogue.subscribe(subjects.wfRollCall(net.cluster), () => ({ node: 42 }), { kinds: [WF_ROLL_CALL_KIND] });
  await rogue.subscribe(subjects.wfActivate(net.cluster), () => ({ node: 'rogue' }), { kinds: [WF_NOCACHE_KIND, WF_ACTIVATED_KIND] });
  const sender = await net.bus();
  sender.publish(subjects.wfActivate(net.cluster), WF_NOCACHE_KIND, { app: APP, version: '5' }); // no activation, no expiresInMs
  sender.publish(subjects.wfActivate(net.cluster), WF_ACTIVATED_KIND, 'not an object');
  const reply = await sender.gather(subjects.wfRollCall(net.cluster), WF_ROLL_CALL_KIND, { activation: 7 }, { delayMs: 200 });
  t.true(reply.every((r) => r === null || r === undefined || (r as { node?: unknown }).node === 42));
  await until('warned', () => logs.some((l) => /malformed workflow activation message/.test(l.msg)), 20_000);
  t.deepEqual(m.events, ['reconnect sees 1']);
  t.deepEqual([...m.member.nocache()], []);

  const activatorLog = capturingLogger('warn');
  const result = await runActivation({
    bus: await net.bus(),
    cluster: net.cluster,
    logger: activatorLog.logger,
    appId: APP,
    version: '2',
    delayMs: 1000, // long enough for m's answer on a loaded machine
    flip: () => net.setActive('2'),
  });
  t.deepEqual(result.members, ['m']);
  t.true(activatorLog.lines.some((l) => /malformed activation answer/.test(l.msg)));

  // A malformed in-flight answer does not stop a member from starting.
  await rogue.subscribe(subjects.wfActivations(net.cluster), () => ({ activations: [{ app: APP }] }), { kinds: [WF_INFLIGHT_KIND] });
  const joinLog = capturingLogger('warn');
  const joiner = await standIn(net, 'joiner', { logger: joinLog.logger, inflightDelayMs: 3000 });
  t.deepEqual(joiner.events, ['reconnect sees 2']);
  t.true(joinLog.lines.some((l) => /malformed in-flight activation answer/.test(l.msg)));
});

test('after a reconnect the member reads the active version again (what changed while it was away is not missed)', async (t) => {
  const server = await startNats({ jetstream: false });
  t.teardown(() => server.destroy());
  const net = await network(t);
  // The member's bus goes through a server of its own that the test restarts; Postgres is the network's.
  const bus = await connectNatsBus({ servers: server.url, cluster: net.cluster, reconnectTimeWait: 100, connectRetryMs: 100 });
  t.teardown(() => bus.close());
  const seen: string[] = [];
  const member = await startActivationMember({
    bus,
    cluster: net.cluster,
    nodeId: 'r',
    logger: capturingLogger('warn').logger,
    inflightDelayMs: 50,
    onNocache: () => undefined,
    onReconnect: async () => {
      seen.push(`reconnect sees ${await net.active()}`);
    },
  });
  t.deepEqual(seen, ['reconnect sees 1']);
  await server.stop();
  await net.setActive('2');
  await server.restart();
  await until('reconnected', () => seen.length === 2, 30_000);
  t.deepEqual(seen, ['reconnect sees 1', 'reconnect sees 2']);
  await member.stop();
});
