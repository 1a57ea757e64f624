// Plain claim/complete loop straight on the store, no engine, with the CPU of this loop's own
// Postgres backends (not every postgres process: the machine is shared), so that what a change of
// the claim or the completion costs inside Postgres reads with little noise.
//   npx tsx bench/pg-loop.ts [--jobs 20000] [--batch 500] [--runs 3] [--roots <tree>,<tree>] [--explain]
// `--roots`: built checkouts whose @partita/postgres to load (default: this one), run alternating
// A B A B… `--runs` times each, in the same minutes. One JSON line per run: wall time of the claims
// and the completions per job, the own backends' CPU ms per 1,000 jobs, WAL bytes per job
// (pg_current_wal_lsn before and after: other work's WAL counts too), the load.
// `--explain` prints EXPLAIN (ANALYZE, BUFFERS, WAL) of one claim and its completion per root,
// halfway through the first run (in a transaction rolled back).
// `claimCpuUsPerJob` / `completeCpuUsPerJob`: the backends' CPU while each statement ran, from
// /proc/<pid>/schedstat (nanoseconds, where stat's ticks are 10 ms), summed per kind, per job.
// `--statio`: buffers read per job, per relation of the run's schema (pg_statio, enqueue included).
// `--perf <file>`: `perf record -g` of the loop's backends over the claim/complete loop only
// (<file>.<run>), for `perf report`.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';
import pg from 'pg';

const args = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const JOBS = Number(flag('jobs', '20000'));
const BATCH = Number(flag('batch', '500'));
const RUNS = Number(flag('runs', '3'));
const ROOTS = flag('roots', resolve(new URL('..', import.meta.url).pathname))
  .split(',')
  .map((r) => resolve(r));
const EXPLAIN = args.includes('--explain');
const STATIO = args.includes('--statio');
const PERF = flag('perf', '');
const PG_URL = process.env.PARTITA_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TICK_MS = 10; // USER_HZ 100

/** User + system CPU ms of the given processes, from /proc (a backend gone meanwhile counts 0). */
function cpuMs(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(f[11]) + Number(f[12])) * TICK_MS;
    } catch {
      // exited
    }
  }
  return total;
}

/** Nanoseconds the given processes have run on a CPU (/proc/<pid>/schedstat: exact, unlike the ticks of stat). */
function runNs(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // exited
    }
  }
  return total;
}

function p10(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return +(s[Math.floor(s.length / 10)] ?? NaN).toFixed(1);
}

function lsnBytes(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

async function run(root: string, admin: pg.Pool, explain: boolean, r: number): Promise<Record<string, unknown>> {
  const { JobStore, loadOps } = await import(pathToFileURL(join(root, 'packages', 'postgres', 'dist', 'index.js')).href);
  const app = `pgloop_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const schema = app;
  const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}application_name=${app}`;
  const store = await JobStore.open({ postgres: { connectionString: url, max: 4 }, schema });
  let closed = false;
  try {
    await store.registerQueues('node-a', [{ partition: 'p', queue: 'default', concurrency: 32 }]);
    for (let i = 0; i < JOBS; i += 1000) {
      await store.enqueue(
        Array.from({ length: Math.min(1000, JOBS - i) }, (_, j) => ({ partition: 'p', type: 'k', payload: { n: i + j } })),
      );
    }
    await admin.query(`VACUUM (ANALYZE) "${schema}".jobs`);
    await admin.query('CHECKPOINT');
    const claimReq = { nodeId: 'node-a', partition: 'p', leaseMs: 60_000, queues: [{ queue: 'default', limit: BATCH }] };
    // Warm the store's connections (each prepares its statements once), then read their backends.
    for (let w = 0; w < 4; w++) {
      const c = await store.claim({ ...claimReq, queues: [{ queue: 'default', limit: 1 }] });
      await store.complete(
        'node-a',
        c.map((j: { id: string; attempt: number }) => ({ id: j.id, attempt: j.attempt, result: null })),
      );
    }
    const pids = (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [app])).rows.map(
      (r) => r.pid,
    );
    const [{ lsn: lsn0 }] = (await admin.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows;
    let claimMs = 0;
    let completeMs = 0;
    // Per statement, µs per job: their low tenth is what the statements cost when the shared
    // machine left them alone (the totals take in every stall).
    const claimUs: number[] = [];
    const completeUs: number[] = [];
    let claimNs = 0;
    let completeNs = 0;
    let done = 0;
    let explained = !explain;
    // `--perf <file>`: perf record of the loop's own backends, the claim/complete loop only.
    const perf = PERF
      ? spawn('perf', ['record', '-F', '4999', '-g', '-o', `${PERF}.${r}`, '-p', pids.join(',')], { stdio: 'ignore' })
      : undefined;
    if (perf) await new Promise((res) => setTimeout(res, 300));
    const cpu0 = cpuMs(pids);
    const t0 = performance.now();
    for (;;) {
      let t = performance.now();
      let ns = runNs(pids);
      const claimed: { id: string; attempt: number }[] = await store.claim(claimReq);
      claimMs += performance.now() - t;
      claimNs += runNs(pids) - ns;
      if (claimed.length === 0) break;
      claimUs.push(((performance.now() - t) * 1000) / claimed.length);
      const items = claimed.map((c) => ({ id: c.id, attempt: c.attempt, result: null }));
      t = performance.now();
      ns = runNs(pids);
      await store.complete('node-a', items);
      completeMs += performance.now() - t;
      completeNs += runNs(pids) - ns;
      completeUs.push(((performance.now() - t) * 1000) / claimed.length);
      done += claimed.length;
      if (!explained && done >= JOBS / 2) {
        explained = true;
        await explainPair(admin, loadOps(schema), schema, root);
      }
    }
    const wall = performance.now() - t0;
    const cpu = cpuMs(pids) - cpu0;
    if (perf) {
      perf.kill('SIGINT');
      await new Promise((res) => perf.on('exit', res));
    }
    const [{ lsn: lsn1 }] = (await admin.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows;
    // Buffers each relation's pages were read through, per job: the store's backends report their
    // counters when they exit, so the store is closed first (the enqueue and VACUUM count too).
    let statio: Record<string, number> | undefined;
    if (STATIO) {
      closed = true;
      await store.close();
      await new Promise((r) => setTimeout(r, 500));
      const { rows } = await admin.query<{ rel: string; blks: string }>(
        `SELECT indexrelname AS rel, idx_blks_hit + idx_blks_read AS blks FROM pg_statio_user_indexes WHERE schemaname = $1
         UNION ALL SELECT relname, heap_blks_hit + heap_blks_read FROM pg_statio_user_tables WHERE schemaname = $1`,
        [schema],
      );
      statio = Object.fromEntries(rows.filter((r) => Number(r.blks) > 0).map((r) => [r.rel, +(Number(r.blks) / done).toFixed(2)]));
    }
    return {
      ...(statio ? { buffersPerJob: statio } : {}),
      root,
      jobs: done,
      wallMs: Math.round(wall),
      claimUsPerJob: +((claimMs * 1000) / done).toFixed(1),
      completeUsPerJob: +((completeMs * 1000) / done).toFixed(1),
      claimUsP10: p10(claimUs),
      completeUsP10: p10(completeUs),
      ownBackendsCpuMsPer1k: +((cpu * 1000) / done).toFixed(1),
      // The backends' CPU while each statement ran (schedstat), per job: what claim and
      // completion each cost Postgres, apart.
      claimCpuUsPerJob: +(claimNs / 1000 / done).toFixed(2),
      completeCpuUsPerJob: +(completeNs / 1000 / done).toFixed(2),
      walBytesPerJob: Number(((lsnBytes(lsn1) - lsnBytes(lsn0)) / BigInt(done)).toString()),
      backends: pids.length,
    };
  } finally {
    if (!closed) await store.close();
    await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
  }
}

/** EXPLAIN (ANALYZE, BUFFERS, WAL) of a claim of BATCH and of its completion, rolled back. */
async function explainPair(admin: pg.Pool, ops: Record<string, { text: string }>, schema: string, root: string): Promise<void> {
  const client = await admin.connect();
  try {
    await client.query('BEGIN');
    const claim = await client.query({
      text: `EXPLAIN (ANALYZE, BUFFERS, WAL) ${ops.claim_batch!.text}`,
      values: ['p', ['default'], [BATCH], 'node-a', 60_000, null, null],
    });
    // In uuid order, with the attempts in the same order, as the store sends them.
    const { rows } = await client.query<{ id: string; attempts: number }>(
      `SELECT id, attempts FROM "${schema}".jobs WHERE state = 'running' AND locked_by = 'node-a' ORDER BY id`,
    );
    const complete = await client.query({
      text: `EXPLAIN (ANALYZE, BUFFERS, WAL) ${ops.complete_batch!.text}`,
      // The rest NULL, as many as the tree's statement takes (complete_batch took 9 before its tids).
      values: [
        `{${rows.map((r) => r.id).join(',')}}`,
        `{${rows.map((r) => r.attempts).join(',')}}`,
        '{}',
        'node-a',
        ...Array.from({ length: Math.max(...[...ops.complete_batch!.text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]))) - 4 }, () => null),
      ],
    });
    const plan = (r: pg.QueryResult) => r.rows.map((x) => x['QUERY PLAN']).join('\n');
    process.stderr.write(
      `== ${root}\n-- claim_batch (${BATCH})\n${plan(claim)}\n-- complete_batch (${rows.length} rows)\n${plan(complete)}\n`,
    );
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
try {
  for (let r = 0; r < RUNS; r++) {
    for (const root of ROOTS) {
      const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
      console.log(JSON.stringify({ run: r, load, ...(await run(root, admin, EXPLAIN && r === 0, r)) }));
    }
  }
} finally {
  await admin.end();
}
