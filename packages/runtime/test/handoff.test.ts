/**
 * Hand-off: an idle engine advertises itself; a client's single enqueue then goes straight into
 * that node's hands (stored as its running attempt) and starts without a claim round trip.
 */
import test, { type ExecutionContext } from 'ava';
import { HANDOFF_KIND, IDLE_KIND, connect, requestGlobal, type Client, type Handoff, type IdleAdvert } from '@partita/client';
import { subjects } from '@partita/nats';
import { defineJob, type PartitaNode } from '@partita/runtime';
import { natsUrl } from '../../../test/helpers/index.js';
import { cluster, sleep, until, type Cluster } from './helpers.js';
import { clientBus, clientStore } from '@partita/client/internal';

async function handoffs(node: PartitaNode, outcome: 'accepted' | 'refused'): Promise<number> {
  const text = await node.metrics.scrape();
  const line = text.split('\n').find((l) => l.startsWith('partita_handoffs_total{') && l.includes(`outcome="${outcome}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function separateClient(c: Cluster): Promise<Client> {
  // A small pool: test files run side by side against one Postgres.
  return connect({
    postgres: { connectionString: c.db.url, max: 2 },
    schema: c.db.schema,
    nats: await natsUrl(),
    cluster: c.db.schema.replaceAll('_', '-'),
  });
}

/** Enqueues (and awaits) jobs until one was handed off: the first enqueue only starts listening for adverts. */
async function enqueueUntilHandedOff(client: Client, node: PartitaNode, type: string): Promise<string> {
  return until(
    'a job handed off',
    async () => {
      const before = await handoffs(node, 'accepted');
      const { id } = await client.enqueue('p', type);
      await client.result(id, { timeoutMs: 10_000 });
      return (await handoffs(node, 'accepted')) > before ? id : undefined;
    },
    20_000,
    100,
  );
}

interface Setup {
  c: Cluster;
  client: Client;
  node: PartitaNode;
  /** Ids of the jobs that ran (type `h`, which returns 1). */
  ran: string[];
}

/** A test with one node (queue `default` of partition `p`, concurrency 2) and a separate client over NATS. */
function handoffTest(title: string, engine: Record<string, number>, body: (t: ExecutionContext, s: Setup) => Promise<void>): void {
  test.serial(title, async (t) => {
    const c = await cluster('handoff');
    const client = await separateClient(c);
    try {
      const ran: string[] = [];
      const job = defineJob({ type: 'h', perform: (_p, ctx) => (ran.push(ctx.id), 1) });
      const node = await c.start({
        partitions: { p: { queues: { default: { concurrency: 2 } } } },
        jobs: [job],
        engine: { pollMs: 100, ...engine },
      });
      await body(t, { c, client, node, ran });
    } finally {
      await client.close();
      await c.close();
    }
  });
}

handoffTest(
  'a single enqueue to an idle node is handed straight to it and runs as its first attempt, without a claim',
  {},
  async (t, { c, client, node, ran }) => {
    const id = await enqueueUntilHandedOff(client, node, 'h');
    const { rows } = await c.db.pool.query(`SELECT state, attempts, node, errors FROM "${c.db.schema}".jobs_history WHERE id = $1`, [id]);
    t.like(rows[0], { state: 'completed', attempts: 1, node: node.id, errors: [] });
    t.is(ran.filter((r) => r === id).length, 1, 'ran once');
    // The node's own client hands off too, straight to its engine.
    const local = await enqueueUntilHandedOff(node.client, node, 'h');
    t.like((await c.db.pool.query(`SELECT state, attempts FROM "${c.db.schema}".jobs_history WHERE id = $1`, [local])).rows[0], {
      state: 'completed',
      attempts: 1,
    });
    t.is(await handoffs(node, 'refused'), 0);
  },
);

handoffTest(
  'a hand-off the node cannot take (its queue was paused since it advertised) goes back to the queue and runs after resume',
  {},
  async (t, { client, node, ran }) => {
    await enqueueUntilHandedOff(client, node, 'h');
    // Stored as the node's running attempt before the pause committed; its message arrives after.
    const { id, claimed } = await clientStore(client).enqueueHandedOff({ partition: 'p', type: 'h' }, node.id, 15_000);
    if (!claimed) return t.fail('stored queued: the queue is not paused yet');
    const global = (request: Parameters<typeof requestGlobal>[3]) => requestGlobal(clientBus(client), client.cluster, 'p', request);
    await global({ op: 'pause', queue: 'default' });
    await until('the engine paused', async () => (await node.stats())[0]!.paused.includes('default'));
    const before = await handoffs(node, 'refused');
    const message: Handoff = {
      job: {
        id,
        partition: 'p',
        queue: 'default',
        type: 'h',
        payload: null,
        priority: 0,
        attempt: 1,
        maxAttempts: 1,
        timeoutMs: null,
        queueKey: null,
      },
    };
    clientBus(client)!.publish(subjects.node(client.cluster, node.id), HANDOFF_KIND, message);
    await until('the node handed it back', async () => (await handoffs(node, 'refused')) > before);
    await until('back in the queue', async () => (await client.job(id))?.state === 'queued');
    t.is((await client.job(id))?.attempts, 0, 'the hand-back does not count an attempt');

    // An advert that crossed the pause on the wire still reaches the client: the enqueue reads the
    // pause in Postgres and stores the job queued, with no hand-off sent at all.
    const late: IdleAdvert = { node: node.id, leaseMs: 15_000, free: 1 };
    clientBus(client)!.publish(subjects.idle(client.cluster, 'p', 'default'), IDLE_KIND, late);
    await sleep(50);
    const accepted = await handoffs(node, 'accepted');
    const refused = await handoffs(node, 'refused');
    const { id: second } = await client.enqueue('p', 'h');
    t.like(await client.job(second), { state: 'queued', attempts: 0 });
    await sleep(300);
    t.deepEqual([await handoffs(node, 'accepted'), await handoffs(node, 'refused')], [accepted, refused], 'no hand-off message');
    t.false(ran.includes(id) || ran.includes(second), 'a paused queue runs neither');
    await global({ op: 'resume', queue: 'default' });
    await client.result(id, { timeoutMs: 10_000 });
    await client.result(second, { timeoutMs: 10_000 });
    t.true(ran.includes(id) && ran.includes(second));
  },
);

handoffTest(
  'a hand-off to a node that is gone runs once its lease expires (rescued), never lost',
  { pollMs: 60_000, leaseMs: 1500, heartbeatMs: 300 },
  async (t, { c, client, ran }) => {
    // A node that advertised itself and died: its advert is still fresh at the client.
    await client.enqueue('p', 'h').then(({ id }) => client.result(id, { timeoutMs: 10_000 }));
    const ghost: IdleAdvert = { node: 'ghost', leaseMs: 400, free: 1 };
    await until('the client heard the ghost', async () => {
      clientBus(client)!.publish(subjects.idle(client.cluster, 'p', 'default'), IDLE_KIND, ghost);
      await sleep(50);
      const { id } = await client.enqueue('p', 'h');
      const { rows } = await c.db.pool.query(`SELECT locked_by FROM "${c.db.schema}".jobs WHERE id = $1`, [id]);
      return rows[0]?.locked_by === 'ghost' ? id : undefined;
    }).then(async (id) => {
      await client.result(id, { timeoutMs: 15_000 });
      const { rows } = await c.db.pool.query(`SELECT attempts, errors FROM "${c.db.schema}".jobs_history WHERE id = $1`, [id]);
      t.like(rows[0].errors[0], { name: 'LeaseExpired', rescued: true }, 'rescued once its lease ran out');
      t.is(rows[0].attempts, 2, 'the lost hand-off counts as the first attempt');
      t.true(ran.includes(id));
    });
  },
);

handoffTest('malformed idle adverts and hand-offs are dropped; the node and the client keep working', {}, async (t, { client, node }) => {
  await client.enqueue('p', 'h').then(({ id }) => client.result(id, { timeoutMs: 10_000 }));
  const idle = subjects.idle(client.cluster, 'p', 'default');
  for (const advert of [
    null,
    'x',
    { node: 5, leaseMs: 100, free: 1 },
    { node: 'n', leaseMs: -1, free: 1 },
    { node: 'n', leaseMs: 100, free: -1 },
  ]) {
    clientBus(client)!.publish(idle, IDLE_KIND, advert);
  }
  const inbox = subjects.node(client.cluster, node.id);
  for (const junk of [
    null,
    { job: null },
    {
      job: {
        id: 'not-a-uuid',
        partition: 'p',
        queue: 'default',
        type: 'h',
        priority: 0,
        attempt: 1,
        maxAttempts: 1,
        timeoutMs: null,
        queueKey: null,
      },
    },
  ]) {
    clientBus(client)!.publish(inbox, HANDOFF_KIND, junk);
  }
  (clientBus(client) as unknown as { publishRaw(subject: string, bytes: Uint8Array): void }).publishRaw(inbox, new Uint8Array([1, 2, 3]));
  await sleep(200);
  for (let i = 0; i < 5; i++) {
    const { id } = await client.enqueue('p', 'h');
    t.is(await client.result(id, { timeoutMs: 10_000 }), 1);
  }
  t.is(await handoffs(node, 'refused'), 0);
});

handoffTest('a repeated hand-off message does not run the job again', {}, async (t, { client, node, ran }) => {
  const id = await enqueueUntilHandedOff(client, node, 'h');
  const job = await client.job(id);
  const again: Handoff = {
    job: {
      id,
      partition: 'p',
      queue: 'default',
      type: 'h',
      payload: job!.payload,
      priority: 0,
      attempt: 1,
      maxAttempts: 1,
      timeoutMs: null,
      queueKey: null,
    },
  };
  clientBus(client)!.publish(subjects.node(client.cluster, node.id), HANDOFF_KIND, again);
  await sleep(300);
  t.is(ran.filter((r) => r === id).length, 1, 'ran once');
  t.is((await client.job(id))?.state, 'completed');
});

handoffTest(
  'a hand-off marked for a continuation the node does not run goes back to the queue unrun (its outcome would skip the continuation)',
  {},
  async (t, { c, client, node, ran }) => {
    await client.enqueue('p', 'h').then(({ id }) => client.result(id, { timeoutMs: 10_000 }));
    const { claimed } = await clientStore(client).enqueueHandedOff(
      { partition: 'p', type: 'h', continuation: 'elsewhere' },
      node.id,
      15_000,
    );
    if (!claimed) return t.fail('stored queued: the queue is not paused');
    t.is(claimed.continuation, 'elsewhere');
    const before = await handoffs(node, 'refused');
    const message: Handoff = {
      job: {
        id: claimed.id,
        partition: 'p',
        queue: 'default',
        type: 'h',
        payload: claimed.payload,
        priority: 0,
        attempt: claimed.attempt,
        maxAttempts: claimed.maxAttempts,
        timeoutMs: null,
        queueKey: null,
        continuation: 'elsewhere',
      },
    };
    clientBus(client)!.publish(subjects.node(client.cluster, node.id), HANDOFF_KIND, message);
    await until('the node handed it back', async () => (await handoffs(node, 'refused')) > before);
    await until('back in the queue', async () => (await client.job(claimed.id))?.state === 'queued');
    await sleep(300);
    t.false(ran.includes(claimed.id), 'not run here: no claim of this node takes a job marked for a continuation it does not run');
    const { rows } = await c.db.pool.query(`SELECT state, continuation FROM "${c.db.schema}".jobs WHERE id = $1`, [claimed.id]);
    t.like(rows[0], { state: 'queued', continuation: 'elsewhere' });
  },
);
