// Claim/complete loop over keyed or plain jobs straight on the store, no engine: the Postgres cost
// of each path per job, without the engine's pipeline around it. One JSON line per run.
//   npx tsx bench/keys-loop.ts [--jobs 20000] [--keys 1000|0] [--batch 500] [--runs 3] [--explain] [--no-vacuum]
//                              [--modes plain,folded,here]
// Runs alternate plain, keyed settled in the completion (claim, complete), and keyed as the engine
// runs it (the completion takes each key's next job into node-a's hands in its own statement: no settle,
// no claim); --keys 0 runs only plain. Times are wall time of the calls
// from this process; `pgCpuMs` is the CPU of every local postgres process meanwhile (/proc), so
// other work on the machine shows in it: compare within one invocation. `ownCpuMsPer1k` is the CPU
// of this run's own backends alone (/proc/<pid>/schedstat, from the loop's start).
import { readFileSync, readdirSync } from 'node:fs';
import pg from 'pg';
import { JobStore, loadOps } from '@partita/postgres';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const JOBS = flag('jobs', 20000);
const KEYS = flag('keys', 1000);
const BATCH = flag('batch', 500);
const RUNS = flag('runs', 3);
const EXPLAIN = args.includes('--explain');
// As the bench's drains run: no VACUUM between the enqueue and the drain (hint bits unset, the head
// rows' enqueue versions not yet pruned).
const NO_VACUUM = args.includes('--no-vacuum');
const MODES = (args.includes('--modes') ? args[args.indexOf('--modes') + 1]! : 'plain,folded,here').split(',');
const URL = process.env.PARTITA_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function postgresCpuMs(): number {
  const tick = 100;
  let total = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      if (comm !== 'postgres') continue;
      const f = stat.slice(close + 2).split(' ');
      total += ((Number(f[11]) + Number(f[12])) * 1000) / tick;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

async function run(keys: number, admin: pg.Pool, take: false | 'here' = false): Promise<Record<string, unknown>> {
  const schema = `keysloop_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const store = await JobStore.open({ postgres: { connectionString: URL, max: 4, application_name: schema }, schema });
  const ownNs = async (): Promise<Map<number, number>> => {
    const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [schema]);
    return new Map(rows.map((r) => [r.pid, Number(readFileSync(`/proc/${r.pid}/schedstat`, 'utf8').split(' ')[0])]));
  };
  try {
    await store.registerQueues('node-a', [{ partition: 'p', queue: 'default', concurrency: 32 }]);
    for (let i = 0; i < JOBS; i += 1000) {
      await store.enqueue(
        Array.from({ length: Math.min(1000, JOBS - i) }, (_, j) => ({
          partition: 'p',
          type: 'k',
          payload: { n: i + j },
          ...(keys > 0 ? { executionKey: `k${(i + j) % keys}` } : {}),
        })),
      );
    }
    if (!NO_VACUUM) await admin.query(`VACUUM (ANALYZE) "${schema}".jobs`);
    await admin.query('CHECKPOINT');
    let claimMs = 0;
    let completeMs = 0;
    let done = 0;
    let calls = 0;
    let explained = false;
    const own0 = await ownNs();
    const cpu0 = postgresCpuMs();
    const t0 = performance.now();
    let taken: Awaited<ReturnType<typeof store.claim>> = [];
    for (;;) {
      let t = performance.now();
      const claimed =
        taken.length > 0
          ? taken
          : await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 60_000, queues: [{ queue: 'default', limit: BATCH }] });
      if (taken.length === 0) claimMs += performance.now() - t;
      if (claimed.length === 0) break;
      const items = claimed.map((c) => ({ id: c.id, attempt: c.attempt, result: null, tid: c.tid }));
      if (EXPLAIN && !explained && done >= JOBS / 2) {
        explained = true;
        const ops = loadOps(schema);
        const client = await admin.connect();
        const sorted = [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        try {
          await client.query('BEGIN');
          const { rows } = await client.query({
            text: `EXPLAIN (ANALYZE, BUFFERS, WAL) ${ops.complete_batch.text}`,
            // As the store sends them: ids in uuid order, attempts in that order, results keyed by id,
            // and (mode here) a place held for every key's next job.
            values: [
              `{${sorted.map((i) => i.id).join(',')}}`,
              `{${sorted.map((i) => i.attempt).join(',')}}`,
              '{}',
              'node-a',
              null,
              sorted.every((i) => i.tid) ? `{${sorted.map((i) => `"${i.tid}"`).join(',')}}` : null,
              take === 'here' ? 60_000 : null,
              null,
              null,
              take === 'here' ? `{${sorted.map(() => 't').join(',')}}` : null,
            ],
          });
          process.stderr.write(`-- complete_batch, ${items.length} rows, keys ${keys}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}\n`);
        } finally {
          await client.query('ROLLBACK');
          client.release();
        }
      }
      t = performance.now();
      const completed = await store.complete(
        'node-a',
        items,
        undefined,
        take === 'here' ? { take: { leaseMs: 60_000, types: null, continuations: null, ids: new Set(items.map((i) => i.id)) } } : {},
      );
      completeMs += performance.now() - t;
      taken = take === 'here' ? completed.settled.taken : [];
      done += claimed.length;
      calls++;
    }
    const wall = performance.now() - t0;
    const cpu = postgresCpuMs() - cpu0;
    let ownNsTotal = 0;
    for (const [pid, ns] of await ownNs()) ownNsTotal += ns - (own0.get(pid) ?? 0);
    // Updates that stayed HOT (no index entry) per table, as the statistics collector saw them.
    const c = await admin.connect();
    let hot: Record<string, string> = {};
    try {
      await c.query('SELECT pg_stat_force_next_flush()');
      await c.query('SELECT pg_stat_clear_snapshot()');
      const { rows } = await c.query<{ relname: string; upd: string; hot: string }>(
        `SELECT relname, n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE schemaname = $1 AND relname IN ('jobs', 'execution_key_heads')`,
        [schema],
      );
      hot = Object.fromEntries(rows.map((r) => [r.relname, `${r.hot}/${r.upd}`]));
    } finally {
      c.release();
    }
    return {
      keys,
      mode: keys === 0 ? 'plain' : take === 'here' ? 'here' : 'folded',
      jobs: done,
      calls,
      wallMs: Math.round(wall),
      claimUsPerJob: +((claimMs * 1000) / done).toFixed(1),
      completeUsPerJob: +((completeMs * 1000) / done).toFixed(1),
      statementsUsPerJob: +(((claimMs + completeMs) * 1000) / done).toFixed(1),
      pgCpuMsPer1k: +((cpu * 1000) / done).toFixed(1),
      ownCpuMsPer1k: +(ownNsTotal / 1e3 / done).toFixed(1),
      hotUpdates: hot,
    };
  } finally {
    await store.close();
    await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
  }
}

const admin = new pg.Pool({ connectionString: URL, max: 2 });
try {
  for (let r = 0; r < RUNS; r++) {
    const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    if (MODES.includes('plain')) console.log(JSON.stringify({ run: r, load: load(), ...(await run(0, admin)) }));
    if (KEYS > 0) {
      if (MODES.includes('folded')) console.log(JSON.stringify({ run: r, load: load(), ...(await run(KEYS, admin)) }));
      if (MODES.includes('here')) console.log(JSON.stringify({ run: r, load: load(), ...(await run(KEYS, admin, 'here')) }));
    }
  }
} finally {
  await admin.end();
}
