/**
 * The node's health and metrics endpoint (@partita/runtime http.ts + metrics.ts) against a real
 * node and Postgres: what `partita start` serves on http.port.
 */
import test from 'ava';
import net from 'node:net';
import { createMetrics, defineJob, liveJobCounts, nodeHealth, startHttpServer, startNode } from '@partita/runtime';
import { freshSchema, tempDataDir } from './helpers/index.js';
import { clientStore } from '@partita/client/internal';

/** The value of the series `name` whose labels include `labels` (any order), from Prometheus text. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const get = async (url: string, init?: RequestInit) => {
  const res = await fetch(url, init);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
};

test('health is 200 with every check when the node is up; metrics report live jobs by state and queue', async (t) => {
  const db = await freshSchema('http');
  const node = await startNode({
    dataDir: tempDataDir('http'),
    postgres: db.url,
    schema: db.schema,
    nats: false,
    partitions: { billing: { queues: { default: { concurrency: 4 }, invoices: { concurrency: 2 } } } },
    jobs: [defineJob({ type: 'noop', perform: () => null })],
  });
  const store = clientStore(node.client);
  const metrics = createMetrics({
    labels: { cluster: 'http-test' },
    jobCounts: liveJobCounts(store),
    engines: () => node.stats(),
    bus: node.bus,
  });
  const server = await startHttpServer({
    port: 0,
    host: '127.0.0.1',
    metrics: metrics.registry,
    health: nodeHealth({
      db: store.pool,
      bus: node.bus,
      partitions: () => ({ billing: node.system.whereis('engine:billing')?.alive === true || 'down' }),
    }),
  });
  t.teardown(async () => {
    await server.close();
    await node.stop({ graceMs: 100 });
    await db.drop();
  });

  const health = await get(`${server.url}/health`);
  t.is(health.status, 200);
  t.regex(health.type, /^application\/json/);
  t.deepEqual(JSON.parse(health.body), { status: 'ok', checks: { postgres: true, bus: true, 'partition:billing': true } });
  t.is((await get(`${server.url}/healthz`)).status, 200);
  t.is((await get(`${server.url}/livez`)).status, 200);
  t.is((await get(`${server.url}/nope`)).status, 404);
  t.is((await get(`${server.url}/metrics`, { method: 'POST' })).status, 405);

  for (let i = 0; i < 3; i++) await node.client.enqueue('billing', 'noop', { i }, { delayMs: 3_600_000 });
  await node.client.enqueue('billing', 'noop', {}, { queue: 'invoices', delayMs: 3_600_000 });
  metrics.claimed('billing', 3.5, 12);
  metrics.flushed('billing', 1.2, 40);
  metrics.finished('billing', 'default', 'completed', 40);
  metrics.globalCall('billing', 'cancelJob', true, 0.8);
  metrics.leasesHeld(7);

  const m = await get(`${server.url}/metrics`);
  t.is(m.status, 200);
  t.regex(m.type, /^text\/plain; version=0\.0\.4/);
  const at = (name: string, labels: Record<string, string> = {}) => sample(m.body, name, { cluster: 'http-test', ...labels });
  const b = { partition: 'billing' };
  t.is(at('partita_jobs', { ...b, queue: 'default', state: 'scheduled' }), 3);
  t.is(at('partita_jobs', { ...b, queue: 'default', state: 'running' }), 0, 'empty states read 0');
  t.is(at('partita_jobs', { ...b, queue: 'invoices', state: 'scheduled' }), 1);
  t.is(at('partita_node_queue_concurrency', { ...b, queue: 'default' }), 4);
  t.is(at('partita_node_jobs_running', { ...b, queue: 'default' }), 0);
  t.is(at('partita_claim_batch_size_count', b), 1);
  t.is(at('partita_claim_batch_size_sum', b), 12);
  t.is(at('partita_claim_duration_seconds_sum', b), 0.0035);
  t.is(at('partita_flush_batch_size_sum', b), 40);
  t.is(at('partita_jobs_finished_total', { ...b, queue: 'default', state: 'completed' }), 40);
  t.is(at('partita_global_calls_total', { ...b, op: 'cancelJob', outcome: 'ok' }), 1);
  t.is(at('partita_leases_held'), 7);
  t.is(at('partita_bus_connected'), 1);
  t.true((at('partita_bus_messages_total', { direction: 'published' }) ?? -1) >= 0);
  t.true((at('process_resident_memory_bytes') ?? 0) > 0, 'process metrics too');
});

test('health is 503 naming what is wrong; a failing metrics source does not fail the scrape', async (t) => {
  const metrics = createMetrics({
    defaultMetrics: false,
    sourceTimeoutMs: 200,
    jobCounts: () => Promise.reject(new Error('db down')),
    engines: () => new Promise(() => undefined), // never answers
  });
  let slow = false;
  const server = await startHttpServer({
    port: 0,
    host: '127.0.0.1',
    metrics: metrics.registry,
    healthTimeoutMs: 300,
    health: async () => {
      if (slow) await new Promise(() => undefined);
      return nodeHealth({
        db: { query: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432')) },
        bus: { connected: false },
        partitions: () => ({ billing: true, emails: 'engine not running' }),
        stopping: () => true,
      })();
    },
  });
  t.teardown(() => server.close());

  const h = await get(`${server.url}/health`);
  t.is(h.status, 503);
  t.deepEqual(JSON.parse(h.body), {
    status: 'unavailable',
    checks: {
      postgres: 'unreachable: connect ECONNREFUSED 127.0.0.1:5432',
      bus: 'disconnected',
      'partition:billing': true,
      'partition:emails': 'engine not running',
      node: 'stopping',
    },
  });
  slow = true;
  const timedOut = await get(`${server.url}/health`);
  t.is(timedOut.status, 503);
  t.regex(timedOut.body, /did not answer within 300 ms/);

  const m = await get(`${server.url}/metrics`);
  t.is(m.status, 200);
  t.is(sample(m.body, 'partita_metrics_source_errors_total', { source: 'job_counts' }), 1, 'counted in the same scrape');
  t.is(sample(m.body, 'partita_metrics_source_errors_total', { source: 'engines' }), 1, 'one engines call per scrape');
});

test('a taken port is reported with what to do', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const err = await t.throwsAsync(startHttpServer({ port, host: '127.0.0.1', health: async () => ({ ready: true, checks: {} }) }));
  t.regex(err!.message, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use; set http\\.port to a free port`));
});

test('by default the server listens on loopback only: 127.0.0.1 answers, another loopback address does not', async (t) => {
  const server = await startHttpServer({ port: 0, health: async () => ({ ready: true, checks: {} }) });
  t.teardown(() => server.close());
  t.is(server.host, '127.0.0.1');
  t.is((await get(`${server.url}/livez`)).status, 200);
  // 127.0.0.2 is loopback too: a server bound to 0.0.0.0 would answer it.
  const refused = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.2', port: server.port });
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
  t.true(refused, 'not reachable on any address but 127.0.0.1');
});
