// Claim/complete loop on the store, no engine: Postgres CPU of this process's own backends
// (postgresOwn, as the bench reports it) per 1,000 plain jobs. Statistics of jobs are taken while
// it is empty but has pages, as between the bench's drains. One JSON line per run; A/B by running
// it in two trees in turn.
//   npx tsx complete-loop.ts [--mode plain|tx] [--jobs 20000] [--batch 500] [--runs 1]
// `tx` completes inside store.withTransaction, as the engine does when continuations run.
import pg from 'pg';
import { loadavg } from 'node:os';
import { JobStore } from '@partita/postgres';
import { cpuPerThousand, cpuSample } from './lib/cpu.js';

const args = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const MODE = flag('mode', 'plain');
const JOBS = Number(flag('jobs', '20000'));
const BATCH = Number(flag('batch', '500'));
const RUNS = Number(flag('runs', '1'));
const URL = process.env.PARTITA_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const admin = new pg.Pool({ connectionString: URL, max: 1 });
for (let r = 0; r < RUNS; r++) {
  const schema = `completeloop_${process.pid}_${r}`;
  const store = await JobStore.open({ postgres: { connectionString: URL, max: 4 }, schema });
  try {
    await store.registerQueues('node-a', [{ partition: 'p', queue: 'default', concurrency: 32 }]);
    await store.enqueue(Array.from({ length: 2000 }, () => ({ partition: 'p', type: 'k' })));
    await admin.query(`DELETE FROM "${schema}".jobs`);
    await admin.query(`VACUUM (ANALYZE) "${schema}".jobs`);
    for (let i = 0; i < JOBS; i += 1000)
      await store.enqueue(
        Array.from({ length: Math.min(1000, JOBS - i) }, (_, j) => ({ partition: 'p', type: 'k', payload: { n: i + j } })),
      );
    let claimMs = 0;
    let completeMs = 0;
    let done = 0;
    const before = cpuSample('before');
    for (;;) {
      let t = performance.now();
      const claimed = await store.claim({
        nodeId: 'node-a',
        partition: 'p',
        leaseMs: 60_000,
        queues: [{ queue: 'default', limit: BATCH }],
      });
      claimMs += performance.now() - t;
      if (claimed.length === 0) break;
      const items = claimed.map((c) => ({ id: c.id, attempt: c.attempt, result: null }));
      t = performance.now();
      if (MODE === 'tx') await store.withTransaction((tx) => store.complete('node-a', items, tx));
      else await store.complete('node-a', items);
      completeMs += performance.now() - t;
      done += claimed.length;
    }
    const cpu = cpuPerThousand(before, cpuSample('after'), done);
    console.log(
      JSON.stringify({
        mode: MODE,
        jobs: done,
        claimUsPerJob: +((claimMs * 1000) / done).toFixed(1),
        completeUsPerJob: +((completeMs * 1000) / done).toFixed(1),
        postgresOwn: cpu.postgresOwn,
        loadAvg1m: +loadavg()[0]!.toFixed(1),
      }),
    );
  } finally {
    await store.close();
    await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
  }
}
await admin.end();
