/**
 * NATS going away and coming back, against a nats-server of the test's own (a real process that
 * is really stopped and restarted on the same port).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { BusUnavailableError, ConfigError } from '@partita/core';
import { freePort, startNats, type TestNats } from '../../../test/helpers/index.js';
import { connectNatsBus, subjects, type BusBase, type BusStatus, type NatsBusOptions } from '../src/index.js';
import { outageSuite } from './suite.js';
import { eventually, randomCluster, sleep, type OutageNetwork } from './support.js';

const FAST: NatsBusOptions = { reconnectTimeWait: 100, reconnectJitter: 50, connectRetryMs: 100 };

async function dedicatedNetwork(): Promise<OutageNetwork & { server: TestNats }> {
  const server = await startNats({ jetstream: false });
  const cluster = randomCluster();
  const buses: BusBase[] = [];
  return {
    server,
    cluster,
    async bus(opts = {}) {
      const bus = await connectNatsBus({ ...FAST, servers: server.url, cluster, ...opts });
      buses.push(bus);
      return bus;
    },
    async rawPublish() {
      throw new Error('not used');
    },
    down: () => server.stop(),
    up: () => server.restart(),
    async close() {
      await Promise.all(buses.map((b) => b.close()));
      await server.destroy();
    },
  };
}

outageSuite('nats (dedicated server)', dedicatedNetwork);

test('nats: a bus created while the server is down starts disconnected and connects when it comes up', async (t) => {
  const net = await dedicatedNetwork();
  t.teardown(() => net.close());
  await net.down();
  const t0 = Date.now();
  const bus = await net.bus();
  t.true(Date.now() - t0 < 3000, 'connectNatsBus does not wait for the server');
  t.false(bus.connected);
  const statuses: BusStatus[] = [];
  bus.onStatus((s) => statuses.push(s));
  // subscribing while down is remembered and made live on connect
  const got: unknown[] = [];
  await bus.subscribe(subjects.wake(net.cluster, 'p', 'q'), (d) => void got.push(d));
  await bus.subscribe(subjects.global(net.cluster, 'p'), (d: number) => d * 2);
  t.notThrows(() => bus.publish(subjects.wake(net.cluster, 'p', 'q'), 'wake', 'lost'));
  await t.throwsAsync(bus.request(subjects.global(net.cluster, 'p'), 'op', 1, { timeoutMs: 5000 }), { instanceOf: BusUnavailableError });
  await sleep(300); // a few background attempts fail meanwhile

  await net.up();
  await eventually(() => bus.connected, 'the bus to connect', 10_000);
  t.deepEqual(statuses, ['connected']);
  const other = await net.bus();
  other.publish(subjects.wake(net.cluster, 'p', 'q'), 'wake', 'hello');
  await eventually(() => got.includes('hello'), 'the subscription made while down to receive', 5000);
  t.false(got.includes('lost'));
  t.is(await other.request(subjects.global(net.cluster, 'p'), 'op', 21, { timeoutMs: 2000 }), 42);
});

test('nats: closing a bus that is still waiting for the server stops the retries', async (t) => {
  const net = await dedicatedNetwork();
  t.teardown(() => net.close());
  await net.down();
  const bus = await net.bus();
  t.false(bus.connected);
  const statuses: BusStatus[] = [];
  bus.onStatus((s) => statuses.push(s));
  await bus.close();
  await net.up();
  await sleep(400);
  t.false(bus.connected);
  t.deepEqual(statuses, ['closed']);
});

test('nats: the server killed hard (SIGKILL) is noticed and recovered from like a clean stop', async (t) => {
  const net = await dedicatedNetwork();
  t.teardown(() => net.close());
  const [a, b] = [await net.bus(), await net.bus()];
  const got: number[] = [];
  await a.subscribe(subjects.throttle(net.cluster), (d: number) => void got.push(d), { queue: 'g' });
  await net.server.stop('SIGKILL');
  await eventually(() => !a.connected && !b.connected, 'disconnect noticed', 10_000);
  await net.server.restart();
  await eventually(() => a.connected && b.connected, 'reconnected', 15_000);
  b.publish(subjects.throttle(net.cluster), 'throttle', 7);
  await eventually(() => got.includes(7), 'queue subscription restored', 5000);
  t.pass();
});

// ------------------------------------------------------------------ credentials

async function waitListening(port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => (s.destroy(), resolve(false)));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nats-server on ${port} did not start`);
    await sleep(50);
  }
}

test('nats: user/password pass through; refused credentials are a ConfigError, not an endless retry', async (t) => {
  const port = await freePort();
  const child = spawn(
    process.env.PARTITA_NATS_SERVER ?? 'nats-server',
    ['-a', '127.0.0.1', '-p', String(port), '--user', 'alice', '--pass', 's3cret'],
    {
      stdio: 'ignore',
    },
  );
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  await waitListening(port, 10_000);
  const url = `nats://127.0.0.1:${port}`;
  const err = await t.throwsAsync(connectNatsBus({ servers: url, user: 'alice', pass: 'wrong' }), { instanceOf: ConfigError });
  t.regex(err!.message, /refused the credentials/);
  t.notRegex(err!.message, /wrong/, 'the password is not echoed');
  const bus = await connectNatsBus({ servers: url, user: 'alice', pass: 's3cret', cluster: 'auth' });
  t.teardown(() => bus.close());
  t.true(bus.connected);
  await bus.subscribe(subjects.global('auth', 'p'), (d: string) => d.toUpperCase());
  t.is(await bus.request(subjects.global('auth', 'p'), 'op', 'ok', { timeoutMs: 2000 }), 'OK');
});
