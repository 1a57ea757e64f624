/**
 * What a workflow writes (issue 18): N workflows of the bench's graph (trigger → 3 no-op worker
 * steps) on a node in this process, and the WAL between the first pub and the last finish, read with
 * pg_walinspect and kept to the relations of the run's own schema (other sessions writing meanwhile
 * do not count; commit records, which belong to no relation, are left out). Per workflow: records
 * and bytes (without full-page images, which follow checkpoint timing), by relation and record type.
 * Deterministic but for autovacuum, unlike CPU and wall time on a shared machine.
 *
 *   npx tsx bench/wf-wal.ts [N=2000] [--tree DIR]   # DIR: another built checkout (a base) to measure
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cpuSample } from './lib/cpu.js';
import { resolveNatsUrl } from './lib/nats.js';
import { adminPool, dropSchema, freshSchemaName, resolvePostgresUrl } from './lib/postgres.js';

const log = (msg: string) => process.stderr.write(`[wf-wal] ${msg}\n`);
const args = process.argv.slice(2);
const treeAt = args.indexOf('--tree');
const tree = resolve(treeAt >= 0 ? args[treeAt + 1]! : new URL('..', import.meta.url).pathname);
const N = Number(args.find((a, i) => /^\d+$/.test(a) && args[i - 1] !== '--tree') ?? 2000);

const YAML = `
app:
  id: wal
  version: '1'
  graphs:
    - subscribes: wal.run
      activities:
        t1: { type: trigger }
        s1: { type: worker, topic: wal.step, input: { maps: { seq: '{t1.output.data.seq}' } } }
        s2: { type: worker, topic: wal.step, input: { maps: { seq: '{t1.output.data.seq}' } } }
        s3: { type: worker, topic: wal.step, input: { maps: { seq: '{t1.output.data.seq}' } }, job: { maps: { seq: '{t1.output.data.seq}' } } }
      transitions:
        t1: [{ to: s1 }]
        s1: [{ to: s2 }]
        s2: [{ to: s3 }]
`;

const mod = async (pkg: string) => import(pathToFileURL(join(tree, 'packages', pkg, 'dist', 'index.js')).href);
const { startNode, defineJob } = await mod('runtime');
const { connect } = await mod('client');
const { app, workflowsPlugin } = await mod('workflows');
const { silentLogger } = await mod('core');

// WF_WAL_TIMES=1: ms from send to answer per named statement of the tree's pg (pipelined ones overlap),
// and the bytes of its parameters (what the node writes to the socket and the backend receives).
const times = new Map<string, { n: number; ms: number; bytes: number }>();
const paramBytes = (values: unknown): number => {
  let bytes = 0;
  if (Array.isArray(values))
    for (const v of values)
      bytes += Buffer.isBuffer(v)
        ? v.length
        : typeof v === 'string'
          ? Buffer.byteLength(v)
          : v == null
            ? 0
            : Buffer.byteLength(JSON.stringify(v));
  return bytes;
};
if (process.env.WF_WAL_TIMES) {
  const treePg = createRequire(join(tree, 'packages', 'postgres', 'package.json'))('pg') as {
    Client: { prototype: { query: (...args: unknown[]) => unknown } };
  };
  const original = treePg.Client.prototype.query;
  treePg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
    const name = (args[0] as { name?: string } | undefined)?.name;
    const bytes = name ? paramBytes((args[0] as { values?: unknown }).values ?? args[1]) : 0;
    const began = performance.now();
    const answer = original.apply(this, args);
    if (name && answer instanceof Promise)
      answer.then(
        () => {
          const t = times.get(name) ?? { n: 0, ms: 0, bytes: 0 };
          t.n += 1;
          t.bytes += bytes;
          t.ms += performance.now() - began;
          times.set(name, t);
        },
        () => undefined,
      );
    return answer;
  };
}

const url = await resolvePostgresUrl(log);
const nats = await resolveNatsUrl('auto', log);
const admin = adminPool(url);
await admin.query('CREATE SCHEMA IF NOT EXISTS wfwrite_wal');
await admin.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect SCHEMA wfwrite_wal');
const walFn = (
  await admin.query(`SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_walinspect'`)
).rows[0].nspname as string;
const schema = freshSchemaName('wal', 'wf');
const dataDir = mkdtempSync(join(tmpdir(), 'partita-wf-wal-'));
const cluster = `wal-${schema.replaceAll('_', '-')}`;
const node = await startNode({
  postgres: { connectionString: url, max: 10 },
  schema,
  nats: nats ? { servers: nats } : false,
  dataDir,
  cluster,
  logger: silentLogger(),
  partitions: { wal: { queues: { default: { concurrency: 32 } } } },
  jobs: [defineJob({ type: 'wal.step', perform: async () => null })],
  plugins: [workflowsPlugin()],
});
const client = await connect({
  postgres: { connectionString: url, max: 10 },
  schema,
  nats: nats ?? false,
  cluster,
  logger: silentLogger(),
});
const wal = app(client, 'wal', { partition: 'wal' });
await wal.activate((await wal.deploy(YAML)).version);

// The polls for the end go through a connection of their own, whose backend's CPU is left out.
const poller = await admin.connect();
const pollerPid = (await poller.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
// A run writes more WAL than the server keeps between checkpoints on a busy machine ("requested WAL
// segment … has already been removed" when it is read back): a temporary slot of the poller's session
// holds every segment from now until the session ends.
await poller.query('SELECT pg_create_physical_replication_slot($1, true, true)', [`wfwal_${process.pid}`]);

const runMany = async (count: number) => {
  const ids: string[] = [];
  for (let from = 0; from < count; from += 200)
    ids.push(...(await Promise.all(Array.from({ length: Math.min(200, count - from) }, (_, i) => wal.pub('wal.run', { seq: from + i })))));
  for (;;) {
    const { rows } = await poller.query(
      `SELECT count(*)::int AS n FROM "${schema}".wf_workflows WHERE id = ANY($1) AND (status > 0 OR status = -1)`,
      [ids],
    );
    if (rows[0].n === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
};

try {
  await runMany(100); // warm: statements prepared, pages made
  times.clear();
  const lsn = async () => (await admin.query('SELECT pg_current_wal_lsn() AS l')).rows[0].l as string;
  const from = await lsn();
  const began = performance.now();
  const cpu0 = process.cpuUsage();
  const pg0 = cpuSample('before');
  await runMany(N);
  const ms = performance.now() - began;
  const cpu = process.cpuUsage(cpu0);
  // CPU time (not wall time) of the Postgres backends serving this process's node and client.
  const pg1 = cpuSample();
  let pgOwn = 0;
  for (const [pid, cpuMs] of pg1.ownBackends) if (pid !== pollerPid) pgOwn += cpuMs - (pg0.ownBackends.get(pid) ?? 0);
  const to = await lsn();
  // pg_walinspect reads up to the flushed LSN only: a commit not yet flushed (asynchronous commit,
  // another session's) made the range "future".
  for (;;) {
    const { rows: f } = await admin.query('SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS ok', [to]);
    if (f[0].ok) break;
    await admin.query('SELECT pg_switch_wal()').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
  }
  const { rows } = await admin.query(
    `WITH rels AS (
       SELECT c.relfilenode::text AS node, regexp_replace(c.relname, '_\\d{8}', '_DAY') AS rel
       FROM pg_class c WHERE c.relnamespace = $3::regnamespace AND c.relfilenode <> 0
     ), r AS (
       SELECT (regexp_match(block_ref, 'rel \\d+/\\d+/(\\d+)'))[1] AS node, resource_manager AS rm, record_type AS type,
              record_length - fpi_length AS bytes
       FROM ${walFn}.pg_get_wal_records_info($1, $2)
     )
     SELECT rels.rel, r.rm, r.type, count(*)::int AS n, sum(r.bytes)::int AS bytes
     FROM r JOIN rels ON rels.node = r.node GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    [from, to, schema],
  );
  const per = (x: number) => Math.round((x / N) * 100) / 100;
  const sum = (f: (r: { rel: string }) => boolean) =>
    rows.filter(f).reduce((a, r) => ({ n: a.n + r.n, bytes: a.bytes + r.bytes }), { n: 0, bytes: 0 });
  const wf = sum((r) => r.rel.startsWith('wf_'));
  const other = sum((r) => !r.rel.startsWith('wf_'));
  const indexInserts = rows.filter((r) => r.rel.startsWith('wf_') && r.rm === 'Btree' && /INSERT/.test(r.type));
  const out = {
    tree,
    workflows: N,
    ms: Math.round(ms),
    // This process's CPU (the node, its client and this script's polls) per workflow.
    nodeCpuMsPerWorkflow: Math.round(((cpu.user + cpu.system) / 1000 / N) * 1000) / 1000,
    // The node's and client's Postgres backends, the polls' left out (USER_HZ ticks: ±10 ms in all).
    postgresOwnCpuMsPerWorkflow: Math.round((pgOwn / N) * 1000) / 1000,
    load: loadavg()[0]!.toFixed(2),
    perWorkflow: {
      wf: { records: per(wf.n), bytes: per(wf.bytes) },
      jobs: { records: per(other.n), bytes: per(other.bytes) },
      wfIndexInserts: per(indexInserts.reduce((a, r) => a + r.n, 0)),
    },
    statementMsPerWorkflow: Object.fromEntries(
      [...times]
        .sort((a, b) => b[1].ms - a[1].ms)
        .map(([name, t]) => [name, `${per(t.ms)} ms, ${t.n} calls, ${Math.round(t.bytes / N)} B of parameters`]),
    ),
    byRecord: rows.map((r) => `${r.rel} ${r.rm}/${r.type}: ${per(r.n)} rec, ${per(r.bytes)} B`),
  };
  process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
} finally {
  poller.release();
  await client.close();
  await node.stop();
  if (process.env.WF_WAL_KEEP) log(`kept schema ${schema}`);
  else await dropSchema(admin, schema);
  await admin.end();
  rmSync(dataDir, { recursive: true, force: true });
}
