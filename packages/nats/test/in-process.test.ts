import test from 'ava';
import { InProcessBroker, InProcessBus, NoRespondersError, createBus, subjects, type BusBase } from '../src/index.js';
import { busSuite, outageSuite } from './suite.js';
import { eventually, randomCluster, type OutageNetwork } from './support.js';

function inProcessNetwork(): OutageNetwork {
  const broker = new InProcessBroker();
  const cluster = randomCluster();
  const buses: BusBase[] = [];
  const raw = new InProcessBus({ broker, cluster });
  return {
    cluster,
    async bus(opts = {}) {
      const bus = new InProcessBus({ broker, cluster, ...opts });
      buses.push(bus);
      return bus;
    },
    async rawPublish(subject, bytes) {
      raw.publishRaw(subject, bytes);
    },
    async down() {
      broker.setOnline(false);
    },
    async up() {
      broker.setOnline(true);
    },
    async close() {
      await Promise.all([...buses, raw].map((b) => b.close()));
    },
  };
}

busSuite('in-process', async () => inProcessNetwork());
outageSuite('in-process', async () => inProcessNetwork());

test('in-process: buses on different brokers do not hear each other', async (t) => {
  const a = new InProcessBus({ cluster: 'c' });
  const b = new InProcessBus({ cluster: 'c' });
  t.teardown(() => Promise.all([a.close(), b.close()]).then(() => undefined));
  let got = 0;
  await a.subscribe('partita.c.>', () => void got++);
  await t.throwsAsync(b.request(subjects.global('c', 'p'), 'op', 1, { timeoutMs: 500 }), { instanceOf: NoRespondersError });
  b.publish(subjects.rollCall('c'), 'x', 1);
  a.publish(subjects.rollCall('c'), 'x', 1);
  await eventually(() => got === 1, 'the echo on a');
  t.is(got, 1);
});

test('in-process: createBus(false) is an in-process bus with the given cluster', async (t) => {
  const bus = await createBus(false, { cluster: 'solo' });
  t.teardown(() => bus.close());
  t.true(bus instanceof InProcessBus);
  t.is(bus.cluster, 'solo');
  t.true(bus.connected);
  await bus.subscribe(subjects.global('solo', 'p'), (x: number) => x * 3);
  // The timeout only bounds a broken test: a loaded CI machine once took over 1 s to answer here.
  t.is(await bus.request(subjects.global('solo', 'p'), 'op', 5, { timeoutMs: 15_000 }), 15);
});

test('in-process: a message for a subscription removed before delivery is never delivered', async (t) => {
  const bus = new InProcessBus({ cluster: 'c' });
  t.teardown(() => bus.close());
  let got = 0;
  const off = await bus.subscribe('partita.c.x', () => void got++);
  bus.publish('partita.c.x', 'x', 1);
  await off();
  await new Promise((r) => setTimeout(r, 20));
  t.is(got, 0);
});

test('in-process: the cluster name is validated', (t) => {
  t.throws(() => new InProcessBus({ cluster: 'a.b' }), { message: /cluster/ });
});
