/**
 * What one open dashboard costs Postgres on a deep queue (issue 16: below 2 % of one core with
 * 1,000,000 jobs). A node declares a queue nothing runs (concurrency 0) and the bench fills it; the
 * dashboard runs as `partita dashboard` does, over its own client, whose Postgres connections carry
 * their own application_name. One viewer is held open for --seconds: the event stream, plus the
 * overview and queues pages fetched every --refresh-ms (what the page's script does at most once a
 * second on a busy cluster; with no events it does nothing). The CPU time of the dashboard's
 * backends is read from /proc/<pid>/stat (Postgres on this machine), once per second.
 *
 *   npx tsx packages/dashboard/bench/depth-cpu.ts [--jobs 1000000] [--seconds 60] [--refresh-ms 1000] [--exact]
 *
 * --exact counts depth with the exact GROUP BY (the dashboard before the estimate) for comparison.
 * Env: PG_URL (default postgres://postgres@127.0.0.1:5432/postgres), NATS_URL (default nats://127.0.0.1:4222).
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connect } from '@partita/client';
import { silentLogger } from '@partita/core';
import { defineJob, startNode } from '@partita/runtime';
import { dashboard } from '@partita/dashboard';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '60' },
    'refresh-ms': { type: 'string', default: '1000' },
    exact: { type: 'boolean', default: false },
  },
});
const JOBS = Number(values.jobs);
const SECONDS = Number(values.seconds);
const REFRESH_MS = Number(values['refresh-ms']);
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const APP_NAME = 'partita-dash-bench';
const TICKS_PER_SEC = 100;
const BATCH = 10_000;

const log = (msg: string) => process.stderr.write(`[depth-cpu] ${msg}\n`);

function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SEC;
  } catch {
    return undefined;
  }
}

const admin = new pg.Pool({ connectionString: PG_URL, max: 2, application_name: 'partita-dash-bench-admin' });
const schema = `dashbench_${Date.now().toString(36)}`;
await admin.query(`CREATE SCHEMA ${schema}`);
const node = await startNode({
  postgres: PG_URL,
  schema,
  nats: NATS_URL,
  cluster: schema.replaceAll('_', '-'),
  dataDir: `/tmp/${schema}`,
  persister: 'postgres',
  logger: silentLogger(),
  partitions: { main: { queues: { backlog: { concurrency: 0 }, default: { concurrency: 1 } } } },
  jobs: [defineJob({ type: 'bench.held', queue: 'backlog', perform: async () => undefined })],
});
let server: http.Server | undefined;
try {
  const started = Date.now();
  for (let done = 0; done < JOBS; done += BATCH) {
    const n = Math.min(BATCH, JOBS - done);
    await node.client.enqueueMany(
      'main',
      Array.from({ length: n }, (_, i) => ({ type: 'bench.held', queue: 'backlog', payload: { i: done + i } })),
    );
    if ((done / BATCH) % 20 === 0) log(`enqueued ${done + n} / ${JOBS}`);
  }
  log(`enqueued ${JOBS} jobs in ${((Date.now() - started) / 1000).toFixed(1)} s; vacuum analyze so the run starts from settled statistics`);
  await admin.query(`VACUUM ANALYZE ${schema}.jobs`);

  const client = await connect({
    postgres: { connectionString: PG_URL, application_name: APP_NAME },
    schema,
    nats: NATS_URL,
    cluster: node.client.cluster,
  });
  const handler = dashboard({ client, basePath: '/ui', ...(values.exact ? { estimateDepthAbove: Number.MAX_SAFE_INTEGER } : {}) });
  server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // The viewer: its event stream stays open; its pages are fetched as the script would refresh them.
  const stream = new AbortController();
  const events = fetch(`${origin}/ui/events`, { signal: stream.signal }).then(async (res) => {
    for await (const _ of res.body!) void _;
  });
  events.catch(() => undefined);
  const first = await (await fetch(`${origin}/ui/queues`)).text();
  const shown = /<tr data-queue="main\/backlog">[\s\S]*?<td class="num">(\d+)<\/td>/.exec(first)?.[1];

  const seen = new Map<number, { first: number; last: number }>();
  const sampleBackends = async () => {
    const { rows } = await admin.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name IN ($1, $1 || '-dashboard')",
      [APP_NAME],
    );
    for (const { pid } of rows) {
      const ms = cpuMsOf(pid);
      if (ms === undefined) continue;
      const s = seen.get(pid);
      if (s) s.last = ms;
      else seen.set(pid, { first: ms, last: ms });
    }
  };
  await sampleBackends();
  const load0 = readFileSync('/proc/loadavg', 'utf8').trim();
  const t0 = Date.now();
  let pages = 0;
  let slowest = 0;
  const refresher = setInterval(() => {
    const at = Date.now();
    void Promise.all([fetch(`${origin}/ui/`).then((r) => r.text()), fetch(`${origin}/ui/queues`).then((r) => r.text())]).then(() => {
      pages += 2;
      slowest = Math.max(slowest, Date.now() - at);
    });
  }, REFRESH_MS);
  const sampler = setInterval(() => void sampleBackends(), 1000);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  clearInterval(refresher);
  clearInterval(sampler);
  await sampleBackends();
  const wallMs = Date.now() - t0;
  const cpuMs = [...seen.values()].reduce((sum, s) => sum + (s.last - s.first), 0);
  stream.abort();
  await handler.close();
  await client.close();

  const result = {
    mode: values.exact ? 'exact GROUP BY' : 'estimate above 100,000',
    jobs: JOBS,
    shownDepth: shown === undefined ? undefined : Number(shown),
    seconds: Math.round(wallMs / 100) / 10,
    pagesFetched: pages,
    slowestRefreshMs: slowest,
    dashboardBackends: seen.size,
    postgresCpuMs: Math.round(cpuMs),
    postgresCpuPercentOfOneCore: Math.round((cpuMs / wallMs) * 10000) / 100,
    loadavgBefore: load0,
    loadavgAfter: readFileSync('/proc/loadavg', 'utf8').trim(),
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
} finally {
  server?.close();
  await node.stop({ graceMs: 100 }).catch(() => undefined);
  await admin.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => undefined);
  await admin.end();
}
