import test from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { BusUnavailableError } from '@partita/core';
import { natsUrl } from '../../../test/helpers/index.js';
import { NatsBus, connectNatsBus, createBus, type BusBase } from '../src/index.js';
import { busSuite } from './suite.js';
import { randomCluster, type Network } from './support.js';

async function natsNetwork(): Promise<Network> {
  const url = await natsUrl();
  const cluster = randomCluster();
  const buses: BusBase[] = [];
  let raw: NatsConnection | undefined;
  return {
    cluster,
    async bus(opts = {}) {
      const bus = await connectNatsBus({ servers: url, cluster, name: `test-${cluster}`, ...opts });
      buses.push(bus);
      return bus;
    },
    async rawPublish(subject, bytes) {
      raw ??= await connect({ servers: url });
      raw.publish(subject, bytes);
      await raw.flush();
    },
    async close() {
      await Promise.all(buses.map((b) => b.close()));
      await raw?.close();
    },
  };
}

busSuite('nats', natsNetwork);

test('nats: createBus(url) connects a NatsBus', async (t) => {
  const url = await natsUrl();
  const bus = await createBus(url, { cluster: 'c1' });
  t.teardown(() => bus.close());
  t.true(bus instanceof NatsBus);
  t.true(bus.connected);
  t.is(bus.cluster, 'c1');
});

test('nats: failFast rejects BusUnavailableError when nothing listens (instead of starting disconnected)', async (t) => {
  const err = await t.throwsAsync(connectNatsBus({ servers: 'nats://127.0.0.1:1', failFast: true }), { instanceOf: BusUnavailableError });
  t.regex(err!.message, /127\.0\.0\.1:1.*not connected/);
});
