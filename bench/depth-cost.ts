/**
 * What a drain costs more when a deep backlog waits in another queue (issue 17's `depth`), and what
 * a node over such a backlog pays at idle: two schemas side by side in one process, `plain` (no
 * backlog) and `deep` (`--backlog` jobs in queue `backlog` of the drained partition, inserted as the
 * bench's depth workload inserts them), each with its own client and node (NATS off, pool 10, as the
 * bench's Partita system). Drains alternate between them (deep first in odd rounds), so JIT warm-up
 * and the machine's other work fall on both alike, which the bench's plain-then-depth order does not.
 *
 *   npx tsx bench/depth-cost.ts [--backlog 1000000] [--jobs 20000] [--rounds 4] [--idle 0] [--root <tree>]
 *                               [--backlog-kind depth|hotkey] [--keys 0] [--vacuum-first]
 *
 * `--backlog-kind hotkey`: the deep side's backlog is the bench's hotkey one instead (a running holder of
 * key `hot` leased to no node, its head row, the backlog `waiting` behind it in the drained queue).
 * `--keys N`: the deep side's drained jobs are keyed as the bench's keys workload keys them (job i
 * under `k<i mod N>`), the plain side's are not: with `--backlog 0` a keyed against plain drain with
 * no harness polls. `--vacuum-first`: VACUUM ANALYZE before the enqueue, as the bench's settle, not
 * between it and the drain (hint bits unset, the head rows' enqueue versions not pruned).
 *
 * Per drain (enqueue with the queue stopped, VACUUM ANALYZE and CHECKPOINT as the bench's settle,
 * then startQueues → every handler started → stopQueues, so every outcome is written): wall time,
 * this process's CPU and its Postgres backends' CPU per 1,000 jobs, the statements sent (calls,
 * client-side ms), and the jobs table's own counters from pg_stat_user_tables / pg_statio (sequential
 * scans and rows they read, index scans, buffers): a scan of the backlog shows as ~`--backlog` rows
 * read. `--idle S`: afterwards both nodes sit idle S seconds and the same counters are reported per
 * schema (the lease sweep, the rescue round, the heartbeat). One JSON line per drain and per idle phase.
 */
import { loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import pg from 'pg';
import { cpuSample } from './lib/cpu.js';
import { freshSchemaName, quoteIdent, resolvePostgresUrl } from './lib/postgres.js';
import { arg, benchCluster, countingNoop, loadPackage, ROOT } from './lib/script.js';

const BACKLOG = Number(arg('backlog', '1000000'));
const JOBS = Number(arg('jobs', '20000'));
const ROUNDS = Number(arg('rounds', '4'));
const IDLE_S = Number(arg('idle', '0'));
const BACKLOG_KIND = arg('backlog-kind', 'depth');
const KEYS = Number(arg('keys', '0'));
const VACUUM_FIRST = process.argv.includes('--vacuum-first');

const runtime = await loadPackage('runtime');
const client = await loadPackage('client');
const core = await loadPackage('core');

/** Statements by side and name: calls and client-side ms. */
const schemas: [string, string][] = [];
const statements = new Map<string, { calls: number; ms: number }>();
{
  const treePg = createRequire(join(ROOT, 'packages', 'postgres', 'package.json'))('pg') as typeof pg;
  const proto = treePg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const query = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const cfg = args[0] as string | { name?: string; text?: string };
    const text = typeof cfg === 'string' ? cfg : (cfg.text ?? '');
    // Which side sent it: its schema is in the text (the statement names' hashes are per statement).
    const side = schemas.find(([schema]) => text.includes(schema))?.[1] ?? '?';
    const base =
      typeof cfg === 'string' ? cfg.slice(0, 40) : (cfg.name?.replace(/_[0-9a-f]{10}$/, '') ?? text.replace(/\s+/g, ' ').slice(0, 40));
    const name = `${side}:${base}`;
    const s = statements.get(name) ?? { calls: 0, ms: 0 };
    statements.set(name, s);
    s.calls++;
    const t = performance.now();
    const last = args.length - 1;
    const cb = args[last];
    if (typeof cb === 'function') {
      args[last] = (err: unknown, r: unknown) => {
        s.ms += performance.now() - t;
        return (cb as (e: unknown, r: unknown) => unknown)(err, r);
      };
      return query.apply(this, args);
    }
    const out = query.apply(this, args);
    if (out && typeof (out as Promise<unknown>).then === 'function')
      (out as Promise<unknown>).then(
        () => void (s.ms += performance.now() - t),
        () => undefined,
      );
    return out;
  };
}

const url = await resolvePostgresUrl((m) => process.stderr.write(m + '\n'));
const admin = new pg.Pool({ connectionString: url, max: 1 });
/** An idle backend flushes its table counters within 10 s (PostgreSQL 15's PGSTAT_IDLE_INTERVAL). */
const STATS_WAIT_MS = 10_500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Side {
  name: 'plain' | 'deep';
  schema: string;
  dataDir: string;
  c: { enqueueMany: (p: string, jobs: unknown[]) => Promise<unknown>; close: () => Promise<void> };
  node: {
    startQueues: (p: string, q: string[]) => Promise<void>;
    stopQueues: (p: string, q: string[]) => Promise<void>;
    stop: (o: unknown) => Promise<void>;
  };
}

const { job: noop, untilStarted } = countingNoop(runtime.defineJob);

async function makeSide(name: 'plain' | 'deep'): Promise<Side> {
  const schema = freshSchemaName('partita', `depth${name}`);
  schemas.push([schema, name]);
  const dataDir = mkdtempSync(join(tmpdir(), `partita-${schema}-`));
  const cluster = benchCluster({ core, url, schema, dataDir, job: noop });
  const c = await client.connect(cluster.client);
  if (name === 'deep' && BACKLOG > 0 && BACKLOG_KIND === 'hotkey') {
    // As the bench's insertHotKey: the holder runs under a day's lease on a node id no node has, it
    // is the key's head, and the backlog waits behind it in the drained queue.
    const s = quoteIdent(schema);
    await admin.query(
      `INSERT INTO ${s}.jobs (id, partition, queue, type, payload, execution_key, state, attempts, locked_by, locked_until, started_at)
       VALUES ('00000000-0000-7000-8000-000000000000', 'bench', 'default', 'noop', '{}'::jsonb, 'hot', 'running', 1, 'bench-hot-holder', now() + interval '1 day', now())`,
    );
    await admin.query(
      `INSERT INTO ${s}.execution_key_heads (partition, execution_key, head) VALUES ('bench', 'hot', '00000000-0000-7000-8000-000000000000')`,
    );
    await admin.query(
      `INSERT INTO ${s}.jobs (id, partition, queue, type, payload, execution_key, state)
       SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'bench', 'default', 'noop', '{}'::jsonb, 'hot', 'waiting'
       FROM generate_series(1, $1::int) AS g`,
      [BACKLOG],
    );
    await admin.query(`VACUUM (ANALYZE) ${s}.jobs`);
  } else if (name === 'deep' && BACKLOG > 0) {
    // As the bench's insertBacklog: UUIDv7 ids with timestamp 0, queue `backlog` of the drained partition.
    await admin.query(
      `INSERT INTO ${quoteIdent(schema)}.jobs (id, partition, queue, type, payload)
       SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'bench', 'backlog', 'noop', 'null'::jsonb
       FROM generate_series(1, $1::int) AS g`,
      [BACKLOG],
    );
    await admin.query(`VACUUM (ANALYZE) ${quoteIdent(schema)}.jobs`);
  }
  const node = await runtime.startNode(cluster.node({ default: { concurrency: 32 }, backlog: { concurrency: 0 } }));
  return { name, schema, dataDir, c, node };
}

async function tableStats(schema: string): Promise<Record<string, number>> {
  const { rows } = await admin.query(
    `SELECT s.seq_scan, s.seq_tup_read, coalesce(s.idx_scan, 0) AS idx_scan, s.n_tup_upd, s.n_tup_hot_upd,
            io.heap_blks_read, io.heap_blks_hit, coalesce(io.idx_blks_read, 0) AS idx_blks_read, coalesce(io.idx_blks_hit, 0) AS idx_blks_hit,
            pg_relation_size(s.relid) / 8192 AS pages
     FROM pg_stat_user_tables s JOIN pg_statio_user_tables io USING (relid)
     WHERE s.schemaname = $1 AND s.relname = 'jobs'`,
    [schema],
  );
  return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([k, v]) => [k, Number(v)]));
}

const diff = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - (a[k] ?? 0)]));

function statementDelta(before: Map<string, { calls: number; ms: number }>, side: string): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const [k, v] of statements) {
    if (!k.startsWith(`${side}:`)) continue;
    const b = before.get(k) ?? { calls: 0, ms: 0 };
    if (v.calls === b.calls) continue;
    out[k.slice(side.length + 1).replace(/^partita_/, '')] = [v.calls - b.calls, Math.round((v.ms - b.ms) * 10) / 10];
  }
  return out;
}

const snapshot = () => new Map([...statements].map(([k, v]) => [k, { ...v }]));

async function drain(side: Side, round: number): Promise<void> {
  const keyed = side.name === 'deep' && KEYS > 0;
  if (VACUUM_FIRST) await admin.query(`VACUUM (ANALYZE) ${quoteIdent(side.schema)}.jobs`);
  for (let i = 0; i < JOBS; i += 1000) {
    await side.c.enqueueMany(
      'bench',
      Array.from({ length: Math.min(1000, JOBS - i) }, (_, k) => ({
        type: 'noop',
        queue: 'default',
        payload: { n: i + k },
        ...(keyed ? { executionKey: `k${(i + k) % KEYS}` } : {}),
      })),
    );
  }
  if (!VACUUM_FIRST) await admin.query(`VACUUM (ANALYZE) ${quoteIdent(side.schema)}.jobs`);
  await admin.query('CHECKPOINT');
  await sleep(STATS_WAIT_MS);
  const t0stats = await tableStats(side.schema);
  const st0 = snapshot();
  const done = untilStarted(JOBS);
  const cpu0 = cpuSample('before');
  const t0 = performance.now();
  const load1 = loadavg()[0]!;
  await side.node.startQueues('bench', ['default']);
  await done;
  await side.node.stopQueues('bench', ['default']);
  const ms = performance.now() - t0;
  const cpu1 = cpuSample('after');
  let own = 0;
  for (const [pid, v] of cpu1.ownBackends) own += v - (cpu0.ownBackends.get(pid) ?? 0);
  const stmts = statementDelta(st0, side.name);
  await sleep(STATS_WAIT_MS);
  const t1stats = await tableStats(side.schema);
  const perK = (x: number) => Math.round((x / (JOBS / 1000)) * 100) / 100;
  process.stdout.write(
    JSON.stringify({
      round,
      side: side.name,
      ms: Math.round(ms),
      perSec: Math.round(JOBS / (ms / 1000)),
      load: Math.round(load1 * 10) / 10,
      cpuMsPerK: { process: perK(cpu1.bench - cpu0.bench), postgresOwn: perK(own) },
      jobsTable: diff(t0stats, t1stats),
      statements: stmts,
    }) + '\n',
  );
  const left = await admin.query(
    `SELECT count(*)::int AS n FROM ${quoteIdent(side.schema)}.jobs WHERE queue = 'default' AND execution_key IS DISTINCT FROM 'hot'`,
  );
  if (left.rows[0].n !== 0) throw new Error(`${left.rows[0].n} jobs left after the drain`);
}

const sides: Side[] = [];
try {
  sides.push(await makeSide('plain'), await makeSide('deep'));
  await sleep(1000);
  for (let r = 1; r <= ROUNDS; r++) {
    const order = r % 2 === 1 ? [sides[1]!, sides[0]!] : [sides[0]!, sides[1]!];
    for (const side of order) await drain(side, r);
  }
  if (IDLE_S > 0) {
    await sleep(STATS_WAIT_MS);
    const s0 = await Promise.all(sides.map((s) => tableStats(s.schema)));
    const st0 = snapshot();
    const cpu0 = cpuSample('before');
    await sleep(IDLE_S * 1000);
    const cpu1 = cpuSample('after');
    await sleep(STATS_WAIT_MS);
    const s1 = await Promise.all(sides.map((s) => tableStats(s.schema)));
    let own = 0;
    for (const [pid, v] of cpu1.ownBackends) own += v - (cpu0.ownBackends.get(pid) ?? 0);
    for (const [i, side] of sides.entries()) {
      process.stdout.write(
        JSON.stringify({
          idle: IDLE_S,
          side: side.name,
          jobsTable: diff(s0[i]!, s1[i]!),
          statements: statementDelta(st0, side.name),
          // Both nodes' backends together: the sides' share shows in their statements' time.
          postgresOwnCpuMsBothSides: Math.round(own),
          processCpuMs: Math.round(cpu1.bench - cpu0.bench),
        }) + '\n',
      );
    }
  }
} finally {
  for (const side of sides) {
    await side.node.stop({ graceMs: 5000 }).catch(() => undefined);
    await side.c.close().catch(() => undefined);
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(side.schema)} CASCADE`).catch(() => undefined);
    rmSync(side.dataDir, { recursive: true, force: true });
  }
  await admin.end();
}
