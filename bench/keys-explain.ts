// EXPLAIN (ANALYZE, BUFFERS) of settle_execution_keys as the engine runs it: 20,000 keyed jobs over
// 1,000 keys, claim a batch, complete it with keysLater, then explain the settle (rolled back) and run it.
//   npx tsx bench/keys-explain.ts [--batch 500] [--rounds 3]
import pg from 'pg';
import { readFileSync } from 'node:fs';
import { JobStore, loadOps } from '@partita/postgres';
import { renderOp } from '../packages/postgres/dist/template.js';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const BATCH = flag('batch', 500);
const ROUNDS = flag('rounds', 3);
const URL = process.env.PARTITA_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const lit = (xs: (string | null)[]) => `{${xs.map((x) => (x === null ? 'NULL' : `"${x}"`)).join(',')}}`;

const admin = new pg.Pool({ connectionString: URL, max: 2 });
const schema = `keysexp_${process.pid}`;
const store = await JobStore.open({ postgres: { connectionString: URL, max: 4 }, schema });
try {
  await store.registerQueues('node-a', [{ partition: 'p', queue: 'default', concurrency: 32 }]);
  for (let i = 0; i < 20000; i += 1000)
    await store.enqueue(
      Array.from({ length: 1000 }, (_, j) => ({ partition: 'p', type: 'k', payload: { n: i + j }, executionKey: `k${(i + j) % 1000}` })),
    );
  await admin.query(`VACUUM (ANALYZE) "${schema}".jobs`);
  const ops = loadOps(schema);
  for (let r = 0; r < ROUNDS; r++) {
    const claimed = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 60_000, queues: [{ queue: 'default', limit: BATCH }] });
    await store.complete(
      'node-a',
      claimed.map((c) => ({ id: c.id, attempt: c.attempt, result: null })),
      undefined,
      { keysLater: true },
    );
    const file = process.env.SETTLE_SQL;
    const text = file ? renderOp(readFileSync(file, 'utf8'), file, schema) : ops.settle_execution_keys.text;
    const values: unknown[] = [
      lit(claimed.map(() => 'p')),
      lit(claimed.map((c) => c.executionKey!)),
      lit(claimed.map(() => 'default')),
      'node-a',
      60000,
      null,
      null,
    ];
    if (text.includes('$8')) values.push(lit(claimed.map((c) => c.id)));
    const client = await admin.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query({ text: `EXPLAIN (ANALYZE, BUFFERS, WAL) ${text}`, values });
      process.stdout.write(`-- settle round ${r}, ${claimed.length} keys\n${rows.map((x) => x['QUERY PLAN']).join('\n')}\n`);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    await store.settleExecutionKeys(claimed.map((c) => ({ partition: 'p', execution_key: c.executionKey!, take: null })));
  }
} finally {
  await store.close();
  await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
  await admin.end();
}
