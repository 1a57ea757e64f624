/**
 * CPU and allocation of one node process per job, drain after drain: what `throughput`'s
 * `cpuMsPerThousandJobs.bench` measures, without the bench's other work in the process and with the
 * allocation sites the number comes from.
 *
 *   npx tsx bench/node-drain.ts [--jobs 20000] [--drains 6] [--heap 2] [--top 30] [--root <tree>] [--concurrency 32] [--statements] [--fresh-node]
 *
 * One node (partition `bench`, queue `default`, a no-op `noop` job, NATS off, pool 10, as the bench's
 * Partita system) in a fresh schema; per drain, `--jobs` jobs are enqueued with the queue stopped,
 * then the queue is started and the drain lasts until the handler saw every job and `stopQueues`
 * returned (every outcome recorded). Per drain: this process's CPU ms per 1,000 jobs and the 1-minute
 * load. The last `--heap` drains run under V8's sampling heap profiler with objects the young and old
 * collections freed included, so it reports every byte allocated (KB per job) and the functions that
 * allocated them (self, summed over the drains sampled). The profiler costs CPU: read CPU from the
 * drains before them.
 *
 * `--statements` counts, per drain, the statements the node sent (by prepared name, else the text's
 * start), the round trips (pg writes) and the rows they returned: the deterministic part of the cost.
 *
 * `--root <tree>` loads @partita/* from another built checkout (e.g. /work/base) for an A/B in the same
 * minutes; stdout gets one JSON line per drain and one summary line.
 */
import { Session } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { allocationSites } from './lib/cpu.js';
import { freshSchemaName, quoteIdent, resolvePostgresUrl } from './lib/postgres.js';
import { arg, benchCluster, countingNoop, loadPackage, ROOT } from './lib/script.js';

const JOBS = Number(arg('jobs', '20000'));
const DRAINS = Number(arg('drains', '6'));
const HEAP = Number(arg('heap', '2'));
const TOP = Number(arg('top', '30'));
const CONCURRENCY = Number(arg('concurrency', '32'));
/** Writes a V8 CPU profile of the last drain before the heap-sampled ones (the drain only) to this file. */
const CPU_PROFILE = arg('cpu-profile', '');
const STATEMENTS = process.argv.includes('--statements');
/**
 * A `perf record --control fifo:<ctl>,<ack>` pair (`--perf-ctl ctl,ack`): perf is enabled for the warm drains
 * not heap-sampled and disabled between them, so `perf record -D -1 -e task-clock` samples the
 * drains' CPU time only (V8's profiler samples wall time, which on a loaded machine lands on
 * whatever the process was preempted in).
 */
const PERF_CTL = arg('perf-ctl', '');

const runtime = await loadPackage('runtime');
const client = await loadPackage('client');
const core = await loadPackage('core');

/** Per statement: calls and rows returned, counted while `counting` (the drain only). */
const statements = new Map<string, { calls: number; rows: number }>();
let counting = false;
if (STATEMENTS) {
  // The tree's own pg (what its pools use), which is not necessarily this script's.
  const { createRequire } = await import('node:module');
  const treePg = createRequire(join(ROOT, 'packages', 'postgres', 'package.json'))('pg') as typeof pg;
  const proto = treePg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const query = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const cfg = args[0] as string | { name?: string; text?: string };
    const name = typeof cfg === 'string' ? cfg.slice(0, 40) : (cfg.name ?? cfg.text?.slice(0, 40) ?? '?').replace(/_[0-9a-f]{10}$/, '');
    if (!counting) return query.apply(this, args);
    const s = statements.get(name) ?? { calls: 0, rows: 0 };
    statements.set(name, s);
    s.calls++;
    const count = (r: unknown) =>
      void (s.rows += Array.isArray((r as { rows?: unknown[] })?.rows) ? (r as { rows: unknown[] }).rows.length : 0);
    // The pool passes a callback; a caller of the client itself gets a promise.
    const last = args.length - 1;
    const cb = args[last];
    if (typeof cb === 'function') {
      args[last] = (err: unknown, r: unknown) => {
        if (!err) count(r);
        return (cb as (e: unknown, r: unknown) => unknown)(err, r);
      };
      return query.apply(this, args);
    }
    const out = query.apply(this, args);
    if (out && typeof (out as Promise<unknown>).then === 'function') (out as Promise<unknown>).then(count, () => undefined);
    return out;
  };
}

const url = await resolvePostgresUrl((m) => process.stderr.write(m + '\n'));
const schema = freshSchemaName('partita', 'nodedrain');
const admin = new pg.Pool({ connectionString: url, max: 1 });
const dataDir = mkdtempSync(join(tmpdir(), `partita-${schema}-`));
const { job: noop, untilStarted } = countingNoop(runtime.defineJob);
const cluster = benchCluster({ core, url, schema, dataDir, job: noop });
const c = await client.connect(cluster.client);
/**
 * `--fresh-node`: a node of its own for each drain (started, queue stopped, before the drain's
 * enqueue; stopped after it), as `throughput` starts one per measured run: what a node's first
 * drain costs once this process's JIT has seen others.
 */
const FRESH_NODE = process.argv.includes('--fresh-node');
const startDrainNode = () => runtime.startNode(cluster.node({ default: { concurrency: CONCURRENCY } }));
let node = await startDrainNode();
const perf = PERF_CTL ? PERF_CTL.split(',').map((f, i) => openSync(f, i === 0 ? 'w' : 'r')) : undefined;
const perfControl = (command: 'enable' | 'disable') => {
  if (!perf) return;
  writeSync(perf[0]!, `${command}\n`);
  readSync(perf[1]!, Buffer.alloc(5)); // "ack\n"
};
const session = new Session();
session.connect();
const sites = new Map<string, number>();
const cpus: number[] = [];
const kbs: number[] = [];
try {
  for (let d = 0; d < DRAINS; d++) {
    if (FRESH_NODE && d > 0) {
      await node.stop({ graceMs: 5000 });
      node = await startDrainNode();
    }
    for (let i = 0; i < JOBS; i += 1000) {
      await c.enqueueMany(
        'bench',
        Array.from({ length: Math.min(1000, JOBS - i) }, () => ({ type: 'noop', payload: {} })),
      );
    }
    await admin.query(`VACUUM ANALYZE ${quoteIdent(schema)}.jobs`);
    const heap = d >= DRAINS - HEAP;
    const profiling = CPU_PROFILE !== '' && d === DRAINS - HEAP - 1;
    if (profiling) {
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    if (heap) {
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    }
    const done = untilStarted(JOBS);
    statements.clear();
    counting = true;
    const load1 = loadavg()[0]!;
    const perfOn = d > 0 && !heap && !profiling;
    if (perfOn) perfControl('enable');
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await node.startQueues('bench', ['default']);
    await done;
    await node.stopQueues('bench', ['default']);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if (perfOn) perfControl('disable');
    counting = false;
    const cpuPerK = (cpu.user + cpu.system) / 1000 / (JOBS / 1000);
    if (profiling) {
      const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: unknown };
      writeFileSync(CPU_PROFILE, JSON.stringify(profile));
    }
    const line: Record<string, unknown> = { drain: d + 1, jobs: JOBS, ms: Math.round(ms), perSec: Math.round(JOBS / (ms / 1000)) };
    line.cpuMsPerThousandJobs = Math.round(cpuPerK * 10) / 10;
    line.load = Math.round(load1 * 10) / 10;
    if (STATEMENTS)
      line.statements = Object.fromEntries([...statements].sort((a, b) => b[1].calls - a[1].calls).map(([k, v]) => [k, [v.calls, v.rows]]));
    if (heap) {
      const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
        profile: { head: Parameters<typeof allocationSites>[0] };
      };
      const total = allocationSites(profile.head, sites, ROOT);
      line.kbPerJob = Math.round((total / JOBS / 1024) * 100) / 100;
      line.profiled = true;
      kbs.push(total / JOBS / 1024);
    } else {
      cpus.push(cpuPerK);
    }
    process.stdout.write(JSON.stringify(line) + '\n');
    const left = await admin.query(`SELECT count(*)::int AS n FROM ${quoteIdent(schema)}.jobs`);
    if (left.rows[0].n !== 0) throw new Error(`${left.rows[0].n} jobs left after the drain`);
  }
  const sorted = [...sites].sort((a, b) => b[1] - a[1]);
  const all = sorted.reduce((n, [, v]) => n + v, 0);
  const jobsSampled = JOBS * Math.min(HEAP, DRAINS);
  if (jobsSampled > 0 && TOP > 0) {
    for (const [k, v] of sorted.slice(0, TOP)) {
      process.stderr.write(`${String(Math.round(v / jobsSampled)).padStart(6)} B/job ${((v / all) * 100).toFixed(1).padStart(5)}%  ${k}\n`);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  // The first drain pays the JIT warm-up: the median is taken over the drains after it.
  const warm = cpus.slice(1);
  process.stdout.write(
    JSON.stringify({
      root: ROOT,
      jobs: JOBS,
      drains: DRAINS,
      cpuMsPerThousandJobsMedianWarm: warm.length ? Math.round(med(warm)! * 10) / 10 : null,
      cpuMsPerThousandJobsFirst: cpus.length ? Math.round(cpus[0]! * 10) / 10 : null,
      kbPerJob: kbs.length ? Math.round((kbs.reduce((a, b) => a + b, 0) / kbs.length) * 100) / 100 : null,
      load: loadavg().map((l) => Math.round(l * 10) / 10),
    }) + '\n',
  );
} finally {
  for (const fd of perf ?? []) closeSync(fd);
  session.disconnect();
  await node.stop({ graceMs: 5000 });
  await c.close();
  await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  await admin.end();
  rmSync(dataDir, { recursive: true, force: true });
}
