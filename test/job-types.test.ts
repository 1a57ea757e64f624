/**
 * Job types across the cluster: keys declared on a definition hold for every enqueuer (a bare
 * connect(), the CLI), nodes claim only the types they define, and enqueueing a type no node ever
 * defined is refused unless the enqueuer opts in (allowUnknownType, for deploy ordering).
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { connect, type Client } from '@partita/client';
import { DuplicateQueueKeyError, UnknownJobTypeError, ValidationError } from '@partita/core';
import { defineJob, startNode, type NodeOptions, type PartitaNode } from '@partita/runtime';
import { freshSchema, natsUrl, sleep, tempDataDir, until, type TestSchema } from './helpers/index.js';
import { runCli, tempDir, writeConfig } from './fixtures/cli.js';

interface Env {
  db: TestSchema;
  cluster: string;
  nats: string;
  start(options: Omit<NodeOptions, 'postgres' | 'schema' | 'cluster'>): Promise<PartitaNode>;
  /** A client as the CLI or another service has it: no job definitions; with the bus only when asked. */
  bare(options?: { nats?: boolean }): Promise<Client>;
}

/** A test with its own schema and cluster name; nodes and clients it makes are closed after it. */
function clusterTest(title: string, body: (t: import('ava').ExecutionContext, env: Env) => Promise<void>): void {
  test.serial(title, async (t) => {
    const db = await freshSchema('jobtypes');
    const nats = await natsUrl();
    const cluster = db.schema.replaceAll('_', '-');
    const nodes: PartitaNode[] = [];
    const clients: Client[] = [];
    try {
      await body(t, {
        db,
        cluster,
        nats,
        async start(options) {
          const node = await startNode({
            postgres: db.url,
            schema: db.schema,
            cluster,
            nats,
            dataDir: tempDataDir('jobtypes'),
            engine: { pollMs: 50 },
            ...options,
          });
          nodes.push(node);
          return node;
        },
        async bare(options = {}) {
          const client = await connect({
            postgres: { connectionString: db.url, max: 2 },
            schema: db.schema,
            cluster,
            nats: options.nats ? nats : false,
          });
          clients.push(client);
          return client;
        },
      });
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await Promise.all(nodes.map((n) => n.stop({ graceMs: 200 }).catch(() => undefined)));
      await db.drop();
    }
  });
}

const oneQueue = (concurrency = 4) => ({ p: { queues: { default: { concurrency } } } });

/** A job type whose jobs run until the test lets them finish (by invoice). */
function gatedInvoice(options: { queueKey?: string | ((p: { invoice: string }) => string) } = {}) {
  const gates = new Map<string, () => void>();
  const job = defineJob<{ invoice: string }>({
    type: 'invoice.total',
    ...(options.queueKey !== undefined ? { queueKey: options.queueKey } : { queueKey: 'invoice:{invoice}' }),
    perform: (p) => new Promise<string>((resolve) => gates.set(p.invoice, () => resolve(p.invoice))),
  });
  const started = (invoice: string) => until(`invoice ${invoice} running`, () => gates.get(invoice), 10_000, 10);
  const release = async (invoice: string) => (await started(invoice))();
  return { job, started, release };
}

async function handoffsAccepted(node: PartitaNode): Promise<number> {
  const line = (await node.metrics.scrape())
    .split('\n')
    .find((l) => l.startsWith('partita_handoffs_total{') && l.includes('outcome="accepted"'));
  return line ? Number(line.split(' ').pop()) : 0;
}

clusterTest('a queue-key template holds for a bare connect(): enqueue, enqueueMany, the hand-off path', async (t, env) => {
  const { job, started, release } = gatedInvoice();
  const node = await env.start({ partitions: oneQueue(), jobs: [job] });
  const client = await env.bare();

  const first = await client.enqueue('p', 'invoice.total', { invoice: 'INV-88', lines: [] });
  t.is((await client.job(first.id))!.queueKey, 'invoice:INV-88', 'the client derived the key from the registered template');
  const second = await t.throwsAsync(client.enqueue('p', 'invoice.total', { invoice: 'INV-88', lines: [] }), {
    instanceOf: DuplicateQueueKeyError,
  });
  t.is(second!.queueKey, 'invoice:INV-88');
  t.is(second!.heldBy, first.id);

  const many = await client.enqueueMany('p', [
    { type: 'invoice.total', payload: { invoice: 'INV-88' } },
    { type: 'invoice.total', payload: { invoice: 'INV-89' } },
    { type: 'invoice.total', payload: { invoice: 'INV-89' } },
  ]);
  t.is(many.ids.length, 1);
  t.deepEqual(
    many.refused.map((r) => [r.index, r.queueKey]),
    [
      [0, 'invoice:INV-88'],
      [2, 'invoice:INV-89'],
    ],
  );

  // A payload without the template's value is refused, naming the path, rather than keyed "invoice:undefined".
  const missing = await t.throwsAsync(client.enqueue('p', 'invoice.total', { custmer: 42 }), { instanceOf: ValidationError });
  t.is(missing!.path, 'payload.invoice');
  const missingMany = await t.throwsAsync(
    client.enqueueMany('p', [
      { type: 'invoice.total', payload: { invoice: 'INV-90' } },
      { type: 'invoice.total', payload: {} },
    ]),
    {
      instanceOf: ValidationError,
    },
  );
  t.is(missingMany!.path, 'jobs[1].payload.invoice');
  t.is((await client.jobsByKey('p', 'invoice', 'INV-90')).length, 0);

  // An explicit key still wins over the template.
  const explicit = await client.enqueue('p', 'invoice.total', { invoice: 'INV-91' }, { queueKey: 'manual-1' });
  t.is((await client.job(explicit.id))!.queueKey, 'manual-1');
  for (const invoice of ['INV-88', 'INV-89', 'INV-91']) await release(invoice);
  await client.result(first.id, { timeoutMs: 10_000 });

  // Over NATS a single enqueue may go straight to an idle node (enqueue_handoff): the key holds there too.
  const bus = await env.bare({ nats: true });
  let n = 0;
  const handed = await until(
    'a job handed off',
    async () => {
      const invoice = `H-${++n}`;
      const before = await handoffsAccepted(node);
      const { id } = await bus.enqueue('p', 'invoice.total', { invoice });
      await started(invoice); // the hand-off message counts it before the job starts
      if ((await handoffsAccepted(node)) > before) return { id, invoice };
      await release(invoice);
      await bus.result(id, { timeoutMs: 10_000 });
      return undefined;
    },
    20_000,
    100,
  );
  t.is((await bus.job(handed.id))!.queueKey, `invoice:${handed.invoice}`);
  await t.throwsAsync(bus.enqueue('p', 'invoice.total', { invoice: handed.invoice }), { instanceOf: DuplicateQueueKeyError });
  await release(handed.invoice);
  t.is(await bus.result(handed.id, { timeoutMs: 10_000 }), handed.invoice);
});

clusterTest('an execution-key template holds for a bare client: jobs of one key never run at once', async (t, env) => {
  let running = 0;
  let most = 0;
  const ran: number[] = [];
  const job = defineJob<{ customer: { id: number }; n: number }>({
    type: 'customer.sync',
    executionKey: 'customer-{customer.id}',
    async perform(p) {
      most = Math.max(most, ++running);
      await sleep(60);
      ran.push(p.n);
      running--;
    },
  });
  await env.start({ partitions: oneQueue(8), jobs: [job] });
  const client = await env.bare({ nats: true });
  const ids: string[] = [];
  for (let n = 0; n < 4; n++) ids.push((await client.enqueue('p', 'customer.sync', { customer: { id: 7 }, n })).id);
  // One no node has touched yet: the key is the client's doing, not the engine's at claim time.
  const later = await client.enqueue('p', 'customer.sync', { customer: { id: 7 }, n: 99 }, { delayMs: 60_000 });
  t.is((await client.job(later.id))!.executionKey, 'customer-7');
  t.true(await client.cancel(later.id));
  for (const id of ids) await client.result(id, { timeoutMs: 20_000 });
  t.is(most, 1, 'one job of the key at a time');
  t.deepEqual(ran, [0, 1, 2, 3], 'in enqueue order');
});

clusterTest('a node claims only the types it defines: another node of the same queue runs the rest', async (t, env) => {
  const ranOnOld: string[] = [];
  const ranOnNew: string[] = [];
  const old = defineJob({ type: 'old.type', perform: (_p, ctx) => void ranOnOld.push(ctx.id) });
  const oldNode = await env.start({ nodeId: 'old-node', partitions: oneQueue(), jobs: [old] });
  const client = await env.bare({ nats: true });

  // A rolling deploy: the new type is enqueued before any node that defines it runs.
  const fresh = [];
  for (let i = 0; i < 5; i++) fresh.push((await client.enqueue('p', 'new.type', { i }, { allowUnknownType: true })).id);
  const { id: oldJob } = await client.enqueue('p', 'old.type');
  await client.result(oldJob, { timeoutMs: 10_000 });
  await sleep(500); // the old node polls every 50 ms and is woken by each enqueue
  for (const id of fresh) t.like(await client.job(id), { state: 'queued', attempts: 0, errors: [] }, 'the old node left it alone');

  const newer = defineJob({ type: 'new.type', perform: (_p, ctx) => void ranOnNew.push(ctx.id) });
  const newNode = await env.start({ nodeId: 'new-node', partitions: oneQueue(), jobs: [old, newer] });
  for (const id of fresh) await client.result(id, { timeoutMs: 10_000 });
  for (const id of fresh) t.like(await client.job(id), { state: 'completed', attempts: 1, node: newNode.id, errors: [] });
  t.deepEqual(ranOnNew.sort(), [...fresh].sort());
  t.deepEqual(ranOnOld, [oldJob]);

  // Later ones too, enqueued through either node's client or over the bus (which may hand them to the idle old node).
  const later: string[] = [];
  for (let i = 0; i < 6; i++) later.push((await [client, oldNode.client, newNode.client][i % 3]!.enqueue('p', 'new.type', { i })).id);
  for (const id of later) {
    await client.result(id, { timeoutMs: 10_000 });
    t.like(await client.job(id), { state: 'completed', node: newNode.id, errors: [] });
  }
  t.false(ranOnOld.some((id) => later.includes(id)));
});

clusterTest('enqueueing a type no node defined is an UnknownJobTypeError unless allowUnknownType', async (t, env) => {
  const known = defineJob({ type: 'known', perform: () => 1 });
  const node = await env.start({ partitions: oneQueue(), jobs: [known] });
  const client = await env.bare();
  const err = await t.throwsAsync(client.enqueue('p', 'mystery', { x: 1 }), { instanceOf: UnknownJobTypeError });
  t.is(err!.code, 'UNKNOWN_JOB_TYPE');
  t.regex(
    err!.message,
    /job type "mystery" is not defined by any node of this cluster \(defined: known\); define it with defineJob.*pass \{ allowUnknownType: true \}/,
  );
  await t.throwsAsync(client.enqueueMany('p', [{ type: 'known' }, { type: 'mystery' }]), { instanceOf: UnknownJobTypeError });
  await t.throwsAsync(node.client.enqueue('p', 'mystery'), { instanceOf: UnknownJobTypeError }, "the node's own client too");
  t.is((await env.db.pool.query(`SELECT count(*)::int AS n FROM "${env.db.schema}".jobs`)).rows[0].n, 0, 'nothing was enqueued');

  const { id } = await client.enqueue('p', 'mystery', { x: 1 }, { allowUnknownType: true });
  const { ids } = await client.enqueueMany('p', [{ type: 'mystery', allowUnknownType: true }, { type: 'known' }]);
  t.is(ids.length, 2);
  t.is(await client.result(ids[1]!, { timeoutMs: 10_000 }), 1, 'the node keeps working');
  await sleep(300);
  t.like(await client.job(id), { state: 'queued', attempts: 0 }, 'queued for a node that defines it, not failed');

  // Once a node defines it, enqueues need no opt-in: a client that cached the registry reads it again.
  const mystery = defineJob({ type: 'mystery', perform: () => 'solved' });
  await env.start({ partitions: oneQueue(), jobs: [mystery] });
  const later = await client.enqueue('p', 'mystery');
  t.is(await client.result(later.id, { timeoutMs: 10_000 }), 'solved');
  t.is(await client.result(id, { timeoutMs: 10_000 }), 'solved');
});

clusterTest(
  'defineJob checks key templates at once; a function key is logged as holding only where the definitions are',
  async (t, env) => {
    t.throws(() => defineJob({ type: 'x', queueKey: 'invoice:{invoice', perform: () => 1 }), {
      instanceOf: ValidationError,
      message: /defineJob\("x"\)\.queueKey: "\{" at 8 is never closed/,
    });
    t.throws(() => defineJob({ type: 'x', executionKey: 42 as never, perform: () => 1 }), {
      message: /defineJob\("x"\)\.executionKey: must be a template such as 'invoice:\{invoice\}' or a function/,
    });
    const lines: { msg: string; type?: string }[] = [];
    const logger = (await import('pino')).pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    await env.start({
      logger,
      partitions: oneQueue(),
      jobs: [
        defineJob({ type: 'fn.keyed', queueKey: (p: { a: string }) => `a:${p.a}`, perform: () => 1 }),
        defineJob({ type: 'template.keyed', queueKey: 'a:{a}', perform: () => 1 }),
      ],
    });
    const warned = lines.filter((l) => /declares queueKey as a function, which only clients given the definitions apply/.test(l.msg));
    t.deepEqual(
      warned.map((l) => l.type),
      ['fn.keyed'],
    );
    const { rows } = await env.db.pool.query(`SELECT type, queue_key FROM "${env.db.schema}".job_types ORDER BY type`);
    t.deepEqual(rows, [
      { type: 'fn.keyed', queue_key: null },
      { type: 'template.keyed', queue_key: 'a:{a}' },
    ]);
  },
);

clusterTest(
  "the CLI applies a template key, and a function key from the config's jobs module: the duplicate is refused",
  async (t, env) => {
    const tmp = await tempDir('jobtypes');
    t.teardown(() => tmp.cleanup());
    const { job, release } = gatedInvoice();
    const fnGated = gatedInvoice({ queueKey: (p) => `fn-invoice:${p.invoice}` });
    const fnJob = defineJob({ ...fnGated.job, type: 'invoice.fn' });
    await env.start({ partitions: oneQueue(), jobs: [job, fnJob] });
    // The jobs module as a user writes it; plain objects, so it needs no package resolution from the temp dir.
    await fs.writeFile(
      path.join(tmp.dir, 'jobs.mjs'),
      "export const jobs = [{ type: 'invoice.fn', queueKey: (p) => `fn-invoice:${p.invoice}`, perform() {} }];\n",
    );
    const config = await writeConfig(tmp.dir, {
      cluster: env.cluster,
      postgres: { url: env.db.url, schema: env.db.schema },
      jobs: './jobs.mjs',
      partitions: oneQueue(),
    });
    const cli = (args: string[]) => runCli([...args, '-c', config, '--json'], { timeoutMs: 60_000 });

    const first = await cli(['enqueue', 'p', 'invoice.total', '{"invoice":"INV-88"}']);
    t.is(first.code, 0, first.stderr);
    const again = await cli(['enqueue', 'p', 'invoice.total', '{"invoice":"INV-88"}']);
    t.is(again.code, 5, 'queue key held: conflict');
    t.like(JSON.parse(again.stderr), { error: { code: 'DUPLICATE_QUEUE_KEY' } });

    const fnFirst = await cli(['enqueue', 'p', 'invoice.fn', '{"invoice":"INV-88"}']);
    t.is(fnFirst.code, 0, fnFirst.stderr);
    const fnAgain = await cli(['enqueue', 'p', 'invoice.fn', '{"invoice":"INV-88"}']);
    t.is(fnAgain.code, 5, 'the function key from the jobs module holds too');

    const unknown = await cli(['enqueue', 'p', 'nobody.defines.this']);
    t.is(unknown.code, 2);
    t.like(JSON.parse(unknown.stderr), { error: { code: 'UNKNOWN_JOB_TYPE' } });
    const allowed = await cli(['enqueue', 'p', 'nobody.defines.this', '--allow-unknown-type']);
    t.is(allowed.code, 0, allowed.stderr);
    t.like(
      await env.db.pool
        .query(`SELECT state FROM "${env.db.schema}".jobs WHERE id = $1`, [JSON.parse(allowed.stdout).id])
        .then((r) => r.rows[0]),
      { state: 'queued' },
    );
    await release('INV-88');
    await fnGated.release('INV-88');
  },
);
