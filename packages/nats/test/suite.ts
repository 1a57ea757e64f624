/**
 * The behaviour every Bus must have, run against each implementation (in-process and NATS) with a
 * factory that builds an isolated network for one test.
 */
import test, { type ExecutionContext } from 'ava';
import {
  BusUnavailableError,
  DuplicateQueueKeyError,
  NotLeaderError,
  TimeoutError,
  ValidationError,
  WIRE_VERSION,
  encode,
  pack,
} from '@partita/core';
import { NoRespondersError, RemoteError, subjects, type BusBase, type BusStatus, type MessageInfo } from '../src/index.js';
import { captureLogger, eventually, inboundDrops, sleep, type Network, type NetworkFactory, type OutageNetwork } from './support.js';

async function open(t: ExecutionContext, factory: NetworkFactory): Promise<Network> {
  const net = await factory();
  t.teardown(() => net.close());
  return net;
}

interface Received {
  data: unknown;
  info: MessageInfo;
}

function collector(): { got: Received[]; handler: (data: unknown, info: MessageInfo) => void } {
  const got: Received[] = [];
  return { got, handler: (data, info) => void got.push({ data, info }) };
}

/**
 * Subscribes a fence on `bus` and returns a function that publishes a fence message from `from`
 * and waits for it: messages on one connection arrive in order, so afterwards every earlier
 * message from `from` to `bus` has been delivered.
 */
async function fence(net: Network, bus: BusBase, from: BusBase): Promise<() => Promise<void>> {
  const subject = `partita.${net.cluster}.fence`;
  let seen = 0;
  await bus.subscribe(subject, () => void seen++);
  return async () => {
    const want = seen + 1;
    from.publish(subject, 'fence', {});
    await eventually(() => seen >= want, 'the fence message');
  };
}

export function busSuite(label: string, factory: NetworkFactory): void {
  const name = (s: string) => `${label}: ${s}`;

  test(name('publish/subscribe carries data, kind and subject through msgpack envelopes'), async (t) => {
    const net = await open(t, factory);
    const [a, b] = [await net.bus(), await net.bus()];
    const { got, handler } = collector();
    await a.subscribe(subjects.wake(net.cluster, 'billing', 'default'), handler);
    const when = new Date('2024-01-02T03:04:05.678Z');
    const data = { n: 42, s: 'héllo', list: [1, 'two', null], nested: { deep: { ok: true } }, when, big: 2 ** 40 };
    b.publish(subjects.wake(net.cluster, 'billing', 'default'), 'wake', data);
    await eventually(() => got.length === 1, 'one message');
    t.deepEqual(got[0]!.data, data);
    t.true((got[0]!.data as { when: unknown }).when instanceof Date);
    t.deepEqual(got[0]!.info, {
      subject: `partita.${net.cluster}.wake.billing.default`,
      kind: 'wake',
      version: WIRE_VERSION,
      expectsReply: false,
    });
    t.is(b.stats().published, 1);
    t.is(a.stats().delivered, 1);
    t.true(a.connected);
  });

  test(name('wildcards: `*` matches one token, `>` one or more; each subscriber gets exactly its matches'), async (t) => {
    const net = await open(t, factory);
    const [sub, pub] = [await net.bus(), await net.bus()];
    const root = `partita.${net.cluster}.w`;
    const patterns = ['*', '>', 'a.*', 'a.>', '*.b', 'a.*.c', '*.*.*', 'a.b', 'a.b.>', '*.>'];
    const subjectsToSend = ['a', 'b', 'a.b', 'a.c', 'x.b', 'a.b.c', 'a.x.c', 'a.b.d', 'a.b.c.d', 'x.y.z', 'b.b.b.b.b'];
    // Expected, worked out by hand from the NATS rules (not with the code under test).
    const expected: Record<string, string[]> = {
      '*': ['a', 'b'],
      '>': subjectsToSend,
      'a.*': ['a.b', 'a.c'],
      'a.>': ['a.b', 'a.c', 'a.b.c', 'a.x.c', 'a.b.d', 'a.b.c.d'],
      '*.b': ['a.b', 'x.b'],
      'a.*.c': ['a.b.c', 'a.x.c'],
      '*.*.*': ['a.b.c', 'a.x.c', 'a.b.d', 'x.y.z'],
      'a.b': ['a.b'],
      'a.b.>': ['a.b.c', 'a.b.d', 'a.b.c.d'],
      '*.>': ['a.b', 'a.c', 'x.b', 'a.b.c', 'a.x.c', 'a.b.d', 'a.b.c.d', 'x.y.z', 'b.b.b.b.b'],
    };
    const got = new Map<string, string[]>();
    for (const p of patterns) {
      got.set(p, []);
      await sub.subscribe(`${root}.${p}`, (_d, info) => void got.get(p)!.push(info.subject.slice(root.length + 1)));
    }
    const wait = await fence(net, sub, pub);
    for (const s of subjectsToSend) pub.publish(`${root}.${s}`, 'w', s);
    await wait();
    for (const p of patterns) t.deepEqual(got.get(p)!.sort(), [...expected[p]!].sort(), `pattern ${p}`);
  });

  test(name('queue groups: each message goes to exactly one member; plain subscribers and other groups get all'), async (t) => {
    const net = await open(t, factory);
    const members = [await net.bus(), await net.bus(), await net.bus()];
    const pub = await net.bus();
    const subject = subjects.cancel(net.cluster, 'p1');
    const perMember = members.map(() => [] as number[]);
    await Promise.all(members.map((m, i) => m.subscribe(subject, (d: number) => void perMember[i]!.push(d), { queue: 'workers' })));
    const plain: number[] = [];
    const other: number[] = [];
    await members[0]!.subscribe(subject, (d: number) => void plain.push(d));
    await members[1]!.subscribe(subject, (d: number) => void other.push(d), { queue: 'auditors' });
    const n = 60;
    for (let i = 0; i < n; i++) pub.publish(subject, 'cancel', i);
    await eventually(() => perMember.flat().length >= n && plain.length === n && other.length === n, `${n} messages`);
    await sleep(50);
    const all = perMember.flat().sort((x, y) => x - y);
    t.deepEqual(all, [...Array(n).keys()], 'every message exactly once across the group');
    t.true(perMember.filter((m) => m.length > 0).length >= 2, 'the group spreads the work');
    t.is(plain.length, n);
    t.is(other.length, n);
  });

  test(name('request/reply: sync and async responders, reply data comes back'), async (t) => {
    const net = await open(t, factory);
    const [server, client] = [await net.bus(), await net.bus()];
    const subject = subjects.global(net.cluster, 'billing');
    await server.subscribe(subject, (d: { op: string; x: number }, info) => {
      t.true(info.expectsReply);
      if (d.op === 'double') return { y: d.x * 2 };
      return sleep(20).then(() => ({ y: d.x + 1, kind: info.kind }));
    });
    t.deepEqual(await client.request(subject, 'global.op', { op: 'double', x: 21 }, { timeoutMs: 2000 }), { y: 42 });
    t.deepEqual(await client.request(subject, 'global.op', { op: 'inc', x: 1 }, { timeoutMs: 2000 }), { y: 2, kind: 'global.op' });
    // concurrent requests are matched to their own replies
    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        client.request<{ y: number }>(subject, 'global.op', { op: 'double', x: i }, { timeoutMs: 2000 }),
      ),
    );
    t.deepEqual(
      many.map((r) => r.y),
      Array.from({ length: 20 }, (_, i) => i * 2),
    );
    // a handler returning nothing still answers
    await server.subscribe(`${subject}.void`, () => undefined);
    t.is(await client.request(`${subject}.void`, 'x', null, { timeoutMs: 2000 }), undefined);
  });

  test(name('request/reply: responder errors come back as the same named error with its message'), async (t) => {
    const net = await open(t, factory);
    const [server, client] = [await net.bus(), await net.bus()];
    const subject = subjects.global(net.cluster, 'p');
    await server.subscribe(subject, async (d: string) => {
      if (d === 'dup') throw new DuplicateQueueKeyError('order-7', 'job-1');
      if (d === 'leader') throw new NotLeaderError('p');
      if (d === 'type') throw new TypeError('x is not a function');
      if (d === 'string') throw 'just a string';
      return 'ok';
    });
    const dup = await t.throwsAsync(client.request(subject, 'op', 'dup', { timeoutMs: 2000 }), { instanceOf: DuplicateQueueKeyError });
    t.is(dup!.message, new DuplicateQueueKeyError('order-7', 'job-1').message);
    t.is(dup!.name, 'DuplicateQueueKeyError');
    t.is(dup!.queueKey, 'order-7');
    t.is(dup!.heldBy, 'job-1');
    t.is(dup!.code, 'DUPLICATE_QUEUE_KEY');
    await t.throwsAsync(client.request(subject, 'op', 'leader', { timeoutMs: 2000 }), {
      instanceOf: NotLeaderError,
      message: /partition "p"/,
    });
    const te = await t.throwsAsync(client.request(subject, 'op', 'type', { timeoutMs: 2000 }), { instanceOf: RemoteError });
    t.is(te!.name, 'TypeError');
    t.is(te!.message, 'x is not a function');
    await t.throwsAsync(client.request(subject, 'op', 'string', { timeoutMs: 2000 }), {
      instanceOf: RemoteError,
      message: 'just a string',
    });
    t.is(await client.request(subject, 'op', 'fine', { timeoutMs: 2000 }), 'ok', 'the responder survived its errors');
    t.is(server.stats().handlerErrors, 4);
  });

  test(name('request: TimeoutError when the responder does not answer in time; NoRespondersError when nobody listens'), async (t) => {
    const net = await open(t, factory);
    const [server, client] = [await net.bus(), await net.bus()];
    const subject = subjects.global(net.cluster, 'slow');
    await server.subscribe(subject, () => new Promise(() => undefined));
    const started = Date.now();
    await t.throwsAsync(client.request(subject, 'op', 1, { timeoutMs: 150 }), { instanceOf: TimeoutError, message: /within 150 ms/ });
    const took = Date.now() - started;
    t.true(took >= 140 && took < 5000, `timed out after ${took} ms`);
    const t0 = Date.now();
    await t.throwsAsync(client.request(subjects.global(net.cluster, 'nobody'), 'op', 1, { timeoutMs: 20_000 }), {
      instanceOf: NoRespondersError,
      message: /nobody answers/,
    });
    t.true(Date.now() - t0 < 10_000, 'no responders fails fast, not at the timeout');
  });

  test(name('gather collects every reply for delayMs, stops at max, skips errors, [] when nobody listens'), async (t) => {
    const net = await open(t, factory);
    const nodes = [await net.bus(), await net.bus(), await net.bus()];
    const client = await net.bus();
    const subject = subjects.rollCall(net.cluster);
    await Promise.all(nodes.map((n, i) => n.subscribe(subject, async (d: { q: string }) => ({ node: i, q: d.q }))));
    const failing = await net.bus();
    await failing.subscribe(subject, () => {
      throw new Error('not today');
    });
    // Four responders, one of which fails: with max 3 the gather ends once the three good replies
    // are in (the error is not counted as a reply).
    const t0 = Date.now();
    const all = await client.gather<{ node: number; q: string }>(subject, 'rollcall', { q: 'hi' }, { delayMs: 20_000, max: 3 });
    t.true(Date.now() - t0 < 10_000, 'max ends the gather early');
    t.deepEqual(all.map((r) => r.node).sort(), [0, 1, 2]);
    t.true(all.every((r) => r.q === 'hi'));
    const two = await client.gather(subject, 'rollcall', { q: 'x' }, { delayMs: 20_000, max: 2 });
    t.is(two.length, 2);
    // Without max the gather runs for delayMs and collects everything that came.
    const t1 = Date.now();
    const timed = await client.gather<{ node: number }>(subject, 'rollcall', { q: 'y' }, { delayMs: 400 });
    t.true(Date.now() - t1 >= 390, 'runs for delayMs');
    t.true(timed.length <= 3 && timed.every((r) => typeof r.node === 'number'));
    const t2 = Date.now();
    t.deepEqual(await client.gather(subjects.rollCall(`${net.cluster}x`), 'rollcall', {}, { delayMs: 20_000 }), []);
    t.true(Date.now() - t2 < 10_000, 'no responders ends the gather at once');
    await t.throwsAsync(client.gather(subject, 'rollcall', {}, { delayMs: 0 }), { instanceOf: ValidationError });
  });

  test(name('unsubscribe stops delivery at once and is idempotent; other subscriptions go on'), async (t) => {
    const net = await open(t, factory);
    const [sub, pub] = [await net.bus(), await net.bus()];
    const subject = subjects.pause(net.cluster, 'p');
    const a = collector();
    const b = collector();
    const offA = await sub.subscribe(subject, a.handler);
    await sub.subscribe(subject, b.handler);
    const wait = await fence(net, sub, pub);
    pub.publish(subject, 'pause', 1);
    await wait();
    await offA();
    await offA();
    pub.publish(subject, 'pause', 2);
    pub.publish(subject, 'pause', 3);
    await wait();
    t.deepEqual(
      a.got.map((g) => g.data),
      [1],
    );
    t.deepEqual(
      b.got.map((g) => g.data),
      [1, 2, 3],
    );
  });

  test(name('malformed payloads are dropped, counted and logged once per reason; valid ones still arrive'), async (t) => {
    const net = await open(t, factory);
    const { logger, lines } = captureLogger();
    const sub = await net.bus({ logger });
    const pub = await net.bus();
    const subject = subjects.throttle(net.cluster);
    const { got, handler } = collector();
    await sub.subscribe(subject, handler);
    const garbage = [
      new Uint8Array([0xc1]), // never-used msgpack byte
      new Uint8Array([]),
      new TextEncoder().encode('{"v":1,"k":"json","d":1}'),
      pack([1, 2, 3]),
      pack({ v: '1', k: 'x', d: 1 }),
      pack({ v: 1, k: 7, d: 1 }),
      encode('throttle', { ms: 5 }).subarray(0, 5), // truncated
    ];
    for (const g of garbage) await net.rawPublish(subject, g);
    const wait = await fence(net, sub, pub);
    pub.publish(subject, 'throttle', { ms: 10 });
    await wait();
    t.deepEqual(
      got.map((g) => g.data),
      [{ ms: 10 }],
    );
    const s = sub.stats();
    t.is(s.dropped.malformed, garbage.length);
    t.is(s.received, s.delivered + inboundDrops(sub));
    const warns = lines.filter((l) => l.level === 'warn' && l.fields.reason === 'malformed');
    t.is(warns.length, 1, 'one warning for the reason, not one per message');
    t.is(lines.filter((l) => l.level === 'error' || l.level === 'fatal').length, 0);
  });

  test(name('an envelope of a newer wire version is dropped and counted as version'), async (t) => {
    const net = await open(t, factory);
    const sub = await net.bus();
    const pub = await net.bus();
    const subject = subjects.node(net.cluster, 'versioned');
    const { got, handler } = collector();
    await sub.subscribe(subject, handler);
    await net.rawPublish(subject, pack({ v: WIRE_VERSION + 1, k: 'probe', d: { version: 9 } }));
    await net.rawPublish(subject, pack({ v: WIRE_VERSION + 50, k: 'probe', d: {}, extra: 'field' }));
    const wait = await fence(net, sub, pub);
    pub.publish(subject, 'probe', { version: 2 });
    await wait();
    t.deepEqual(
      got.map((g) => g.data),
      [{ version: 2 }],
    );
    t.is(sub.stats().dropped.version, 2);
    t.is(sub.stats().dropped.malformed, 0);
  });

  test(name('a subscription declaring kinds drops other kinds as unknownKind'), async (t) => {
    const net = await open(t, factory);
    const [sub, pub] = [await net.bus(), await net.bus()];
    const subject = subjects.node(net.cluster, 'n1');
    const { got, handler } = collector();
    await sub.subscribe(subject, handler, { kinds: ['throttle', 'cancel'] });
    const wait = await fence(net, sub, pub);
    pub.publish(subject, 'throttle', 1);
    pub.publish(subject, 'mystery', 2);
    pub.publish(subject, 'cancel', 3);
    await wait();
    t.deepEqual(
      got.map((g) => [g.info.kind, g.data]),
      [
        ['throttle', 1],
        ['cancel', 3],
      ],
    );
    t.is(sub.stats().dropped.unknownKind, 1);
  });

  test(name('a handler that throws or rejects is logged and the subscription keeps delivering'), async (t) => {
    const net = await open(t, factory);
    const { logger, lines } = captureLogger();
    const sub = await net.bus({ logger });
    const pub = await net.bus();
    const subject = subjects.quorum(net.cluster, 'orders.created');
    const seen: number[] = [];
    await sub.subscribe(subject, async (d: number) => {
      seen.push(d);
      if (d === 1) throw new Error('sync-ish failure');
      if (d === 2) return Promise.reject(new Error('async failure'));
      return undefined;
    });
    await sub.subscribe(`${subject}.sync`, () => {
      throw new Error('thrown synchronously');
    });
    const wait = await fence(net, sub, pub);
    pub.publish(subject, 'q', 1);
    pub.publish(subject, 'q', 2);
    pub.publish(`${subject}.sync`, 'q', 0);
    pub.publish(subject, 'q', 3);
    await wait();
    await eventually(() => sub.stats().handlerErrors === 3, 'three handler errors');
    t.deepEqual(seen, [1, 2, 3]);
    t.true(lines.some((l) => l.level === 'warn' && /handler threw/.test(l.msg)));
    t.true(sub.connected);
  });

  test(name('handlers never run inside publish (delivery is asynchronous)'), async (t) => {
    const net = await open(t, factory);
    const bus = await net.bus();
    const subject = subjects.wake(net.cluster, 'p', 'q');
    let calls = 0;
    await bus.subscribe(subject, () => void calls++);
    bus.publish(subject, 'wake', {});
    t.is(calls, 0);
    await eventually(() => calls === 1, 'the echo of our own publish');
  });

  test(name('invalid subjects, patterns, kinds and oversize data are ValidationErrors, not sends'), async (t) => {
    const net = await open(t, factory);
    const bus = await net.bus();
    t.throws(() => bus.publish('a..b', 'k', 1), { instanceOf: ValidationError });
    t.throws(() => bus.publish('a.*', 'k', 1), { instanceOf: ValidationError, message: /wildcard/ });
    t.throws(() => bus.publish('a b', 'k', 1), { instanceOf: ValidationError, message: /whitespace/ });
    t.throws(() => bus.publish('a.b', '', 1), { instanceOf: ValidationError });
    t.throws(() => bus.publish('a.b', 'k', new Uint8Array(2 * 1024 * 1024)), { instanceOf: ValidationError, message: /max payload/ });
    await t.throwsAsync(
      bus.subscribe('a.>.b', () => undefined),
      { instanceOf: ValidationError, message: /last/ },
    );
    await t.throwsAsync(
      bus.subscribe('a.b*', () => undefined),
      { instanceOf: ValidationError },
    );
    await t.throwsAsync(
      bus.subscribe('a.b', () => undefined, { queue: 'has space' }),
      { instanceOf: ValidationError },
    );
    await t.throwsAsync(bus.request('a.b', 'k', 1, { timeoutMs: 0 }), { instanceOf: ValidationError });
    t.is(bus.stats().published, 0);
  });

  test(name('close: pending requests reject BusUnavailableError, later calls fail or drop without throwing'), async (t) => {
    const net = await open(t, factory);
    const [server, client] = [await net.bus(), await net.bus()];
    const subject = subjects.global(net.cluster, 'p');
    await server.subscribe(subject, () => new Promise(() => undefined));
    const statuses: BusStatus[] = [];
    client.onStatus((s) => statuses.push(s));
    const pending = client.request(subject, 'op', 1, { timeoutMs: 10_000 });
    const gathering = client.gather(subject, 'op', 1, { delayMs: 10_000 });
    await sleep(50);
    const t0 = Date.now();
    await client.close();
    await t.throwsAsync(pending, { instanceOf: BusUnavailableError });
    await t.throwsAsync(gathering, { instanceOf: BusUnavailableError });
    t.true(Date.now() - t0 < 5000);
    t.false(client.connected);
    t.deepEqual(statuses, ['closed']);
    t.notThrows(() => client.publish(subject, 'op', 1));
    t.is(client.stats().dropped.closed, 1);
    await t.throwsAsync(client.request(subject, 'op', 1, { timeoutMs: 1000 }), { instanceOf: BusUnavailableError });
    await t.throwsAsync(client.gather(subject, 'op', 1, { delayMs: 100 }), { instanceOf: BusUnavailableError });
    await t.throwsAsync(
      client.subscribe(subject, () => undefined),
      { instanceOf: BusUnavailableError },
    );
    await client.close(); // idempotent
  });
}

/** Behaviour while the server is away, for networks that can take it away. */
export function outageSuite(label: string, factory: () => Promise<OutageNetwork>): void {
  const name = (s: string) => `${label}: ${s}`;

  test(
    name('server away: connected=false, publish drops without throwing, request/gather fail fast; back: subscriptions work again'),
    async (t) => {
      const net = await factory();
      t.teardown(() => net.close());
      const { logger, lines } = captureLogger();
      const sub = await net.bus();
      const pub = await net.bus({ logger });
      const subject = subjects.wake(net.cluster, 'p', 'q');
      const rpc = subjects.global(net.cluster, 'p');
      const { got, handler } = collector();
      await sub.subscribe(subject, handler);
      // Subscribed before the request below: its answer proves the server has this subscription too
      // (sub's connection sent it first), so the request to it cannot meet "no responders".
      await sub.subscribe(`${rpc}.slow`, () => new Promise(() => undefined));
      await sub.subscribe(rpc, (d: number) => d + 1);
      const statuses: BusStatus[] = [];
      pub.onStatus((s) => statuses.push(s));
      t.is(await pub.request(rpc, 'op', 1, { timeoutMs: 2000 }), 2);
      // a request in flight when the server goes away fails fast too
      const inFlight = pub.request(`${rpc}.slow`, 'op', 1, { timeoutMs: 30_000 });
      inFlight.catch(() => undefined);

      await net.down();
      await eventually(() => !pub.connected && !sub.connected, 'both buses to notice the outage', 10_000);
      t.true(statuses.includes('disconnected'));
      await t.throwsAsync(inFlight, { instanceOf: BusUnavailableError });

      t.notThrows(() => {
        for (let i = 0; i < 5; i++) pub.publish(subject, 'wake', i);
      });
      t.is(pub.stats().dropped.disconnected, 5);
      t.is(lines.filter((l) => l.level === 'warn' && /not connected/.test(l.msg)).length, 1, 'one rate-limited warning');
      const t0 = Date.now();
      await t.throwsAsync(pub.request(rpc, 'op', 1, { timeoutMs: 10_000 }), { instanceOf: BusUnavailableError, message: /not connected/ });
      await t.throwsAsync(pub.gather(rpc, 'op', 1, { delayMs: 10_000 }), { instanceOf: BusUnavailableError });
      t.true(Date.now() - t0 < 2000, 'fail fast, no hanging');

      await net.up();
      await eventually(() => pub.connected && sub.connected, 'both buses to reconnect', 15_000);
      t.true(statuses.includes('reconnected'));
      t.true(pub.stats().reconnects >= 1);
      pub.publish(subject, 'wake', 'after');
      await eventually(() => got.some((g) => g.data === 'after'), 'a message through the old subscription', 5000);
      t.is(await pub.request(rpc, 'op', 41, { timeoutMs: 2000 }), 42, 'request/reply works again');
      t.false(
        got.some((g) => typeof g.data === 'number'),
        'messages published while away are not replayed',
      );
    },
  );
}
