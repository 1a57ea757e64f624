// What a variant of the claim's or the completion's SQL costs Postgres, before it is written into
// sql/ops: each variant file is run as a prepared statement with a generic plan (as the store's
// onePlanPool runs claim_batch and complete_batch) on a connection of its own, and the CPU its
// backend spends in it is read from /proc/<pid>/schedstat (nanoseconds) around each execution.
//   npx tsx bench/sql-variants.ts --kind claim|claimlag|complete [--jobs 20000] [--batch 300]
//     [--runs 3] <variant.sql>[@<setup.sql>] ...
// Per run and variant: a fresh schema (this tree's migrations), `--jobs` jobs enqueued, the
// variant's setup SQL if given (`{{schema}}` expanded: e.g. other indexes), VACUUM (ANALYZE) and a
// CHECKPOINT, then the loop until the queue is empty:
//   claim     the variant claims `--batch` (claim_batch's parameters), the store completes them;
//   claimlag  the same, but each batch is completed only after the next claim, so the claim runs
//             with a batch of running jobs ahead of it in the queue (as in an engine's drain);
//   complete  the store claims, the variant completes (complete_batch's parameters; `--attempts
//             jsonb` for a variant taking them as an object keyed by id).
//   Planned generically (`--plan generic`, as the store), or `custom`, `auto`.
// Variants alternate within a run, in the same minutes. One JSON line each: CPU µs per job of the
// variant's statements, statements, the jobs table's updates and HOT updates (pg_stat).
// Variant files are templates as in sql/ops (`{{schema}}`, `{{> fragment}}`).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

const args = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const KIND = flag('kind', 'claim');
const JOBS = Number(flag('jobs', '20000'));
const BATCH = Number(flag('batch', '300'));
const RUNS = Number(flag('runs', '3'));
const ATTEMPTS = flag('attempts', 'array');
const PLAN = flag('plan', 'generic');
const VARIANTS = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
const PG_URL = process.env.PARTITA_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
if (!['claim', 'claimlag', 'complete'].includes(KIND) || VARIANTS.length === 0) {
  console.error(
    'usage: npx tsx bench/sql-variants.ts --kind claim|claimlag|complete [--jobs n] [--batch n] [--runs n] <variant.sql>[@<setup.sql>] ...',
  );
  process.exit(2);
}
const root = resolve(new URL('..', import.meta.url).pathname);
const { JobStore } = await import(pathToFileURL(join(root, 'packages', 'postgres', 'dist', 'index.js')).href);
const { renderOp } = await import(pathToFileURL(join(root, 'packages', 'postgres', 'dist', 'template.js')).href);

function runNs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
}

type Claimed = { id: string; attempt: number };

async function run(variant: string, admin: pg.Pool): Promise<Record<string, unknown>> {
  const [file, setup] = variant.split('@') as [string, string | undefined];
  const schema = `sqlvar_${process.pid}_${Math.random().toString(36).slice(2, 7)}`;
  const store = await JobStore.open({ postgres: { connectionString: PG_URL, max: 2 }, schema });
  const client = new pg.Client({
    connectionString: PG_URL,
    options: `-c plan_cache_mode=${PLAN === 'auto' ? 'auto' : PLAN === 'custom' ? 'force_custom_plan' : 'force_generic_plan'} -c jit=off`,
  });
  let open = true;
  try {
    await client.connect();
    await store.registerQueues('node-a', [{ partition: 'p', queue: 'default', concurrency: 32 }]);
    for (let i = 0; i < JOBS; i += 1000)
      await store.enqueue(
        Array.from({ length: Math.min(1000, JOBS - i) }, (_, j) => ({
          partition: 'p',
          type: 'k',
          payload: { n: i + j },
        })),
      );
    if (setup) await admin.query(readFileSync(setup, 'utf8').replaceAll('{{schema}}', `"${schema}"`));
    await admin.query(`VACUUM (ANALYZE) "${schema}".jobs`);
    await admin.query('CHECKPOINT');
    const text = renderOp(readFileSync(file, 'utf8'), file, schema);
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    // SQL_VARIANTS_EXPLAIN=1: every execution's plan with its row counts and timings, in the server's log.
    if (process.env.SQL_VARIANTS_EXPLAIN)
      await client.query(
        "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on; SET auto_explain.log_nested_statements = on",
      );
    const claimRows = (rows: Record<string, unknown>[]): Claimed[] =>
      rows.filter((r) => r.id !== null).map((r) => ({ id: r.id as string, attempt: r.attempts as number }));
    const complete = (jobs: Claimed[]) =>
      store.complete(
        'node-a',
        jobs.map((j) => ({ ...j, result: null })),
      );
    let ns = 0;
    let done = 0;
    let statements = 0;
    let running: Claimed[] = [];
    for (;;) {
      let jobs: Claimed[];
      if (KIND === 'complete') {
        jobs = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 60_000, queues: [{ queue: 'default', limit: BATCH }] });
        if (jobs.length === 0) break;
        // complete_batch's parameters as the store sends them: the ids in uuid order, the attempts
        // in the same order (`--attempts jsonb`: an object keyed by id, as before 2026-12-07).
        const sorted = [...jobs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        const values = [
          `{${sorted.map((j) => j.id).join(',')}}`,
          ATTEMPTS === 'jsonb'
            ? `{${sorted.map((j) => `"${j.id}":${j.attempt}`).join(',')}}`
            : `{${sorted.map((j) => j.attempt).join(',')}}`,
          '{}',
          'node-a',
          true,
        ];
        const before = runNs(pid);
        const { rows } = await client.query({ name: 'variant', text, values });
        ns += runNs(pid) - before;
        if (rows.some((r) => r.not_done !== null && r.not_done !== undefined)) throw new Error(`${file}: jobs not completed`);
      } else {
        const t = runNs(pid);
        const { rows } = await client.query({ name: 'variant', text, values: ['p', ['default'], [BATCH], 'node-a', 60_000, null, null] });
        ns += runNs(pid) - t;
        jobs = claimRows(rows);
        if (KIND === 'claimlag') {
          if (running.length) await complete(running);
          running = jobs;
        } else if (jobs.length) await complete(jobs);
        if (jobs.length === 0) break;
      }
      done += jobs.length;
      statements++;
    }
    // The backends report their counters as they exit.
    open = false;
    await client.end();
    await store.close();
    await new Promise((r) => setTimeout(r, 300));
    const stat = (
      await admin.query<{ upd: string; hot: string; live: string; history: string }>(
        `SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot,
                (SELECT count(*) FROM "${schema}".jobs) AS live, (SELECT count(*) FROM "${schema}".jobs_history) AS history
         FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'jobs'`,
        [schema],
      )
    ).rows[0]!;
    if (Number(stat.live) !== 0 || Number(stat.history) !== done)
      throw new Error(`${file}: ${stat.live} jobs left, ${stat.history} in history`);
    return {
      variant,
      kind: KIND,
      jobs: done,
      statements,
      cpuUsPerJob: +(ns / 1000 / done).toFixed(2),
      updates: Number(stat.upd),
      hotUpdates: Number(stat.hot),
    };
  } finally {
    if (open) {
      await client.end().catch(() => undefined);
      await store.close();
    }
    await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
  }
}

const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
try {
  for (let r = 0; r < RUNS; r++) {
    for (const variant of VARIANTS) {
      const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
      console.log(JSON.stringify({ run: r, load, ...(await run(variant, admin)) }));
    }
  }
} finally {
  await admin.end();
}
