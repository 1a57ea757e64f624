/**
 * A continuation commits with its completion: a node killed (SIGKILL, a real `partita start` child)
 * while a continuation's transaction is open leaves neither the outcomes nor the follow-ups; the
 * jobs are rescued, complete on another node, and each follow-up exists exactly once.
 */
import test from 'ava';
import path from 'node:path';
import pg from 'pg';
import { FIXTURES, cliCluster, until } from './fixtures/cli.js';

const JOBS_MODULE = path.join(FIXTURES, 'continuation-jobs.mjs');
const count = async (db: pg.Pool, sql: string, values: unknown[] = []) => Number((await db.query(sql, values)).rows[0].n);

test.serial(
  'kill -9 of a node mid-flush, inside its continuation: the rescued jobs complete elsewhere, each follow-up exists exactly once',
  async (t) => {
    const N = 120;
    const { s, start, connect } = await cliCluster(t, 'cont-kill', {
      jobs: JOBS_MODULE,
      engine: { leaseMs: 2000, heartbeatMs: 500, pollMs: 200, prefetch: 16, shutdownGraceMs: 2000 },
      partitions: { p: { queues: { default: { concurrency: 16 } } } },
    });
    const a = await start('node-a', { env: { PARTITA_CONTINUATION_SLEEP_S: '3' } });
    const client = await connect();
    const { ids } = await client.enqueueMany(
      'p',
      Array.from({ length: N }, (_, i) => ({ type: 'parent', payload: { i } })),
    );

    // node-a's continuation sleeps inside its transaction: its follow-ups are written, not committed.
    const sleeping = `SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep($1) /* continuation-kill */%' AND pid <> pg_backend_pid()`;
    await until('node-a is inside a continuation', async () => (await count(s.pool, sleeping)) > 0, 30_000);
    const parentsDone = await count(s.pool, `SELECT count(*) AS n FROM "${s.schema}".jobs_history WHERE type = 'parent'`);
    t.true(a.kill('SIGKILL'), 'node-a was running');
    t.log(`killed node-a inside a continuation's transaction; ${parentsDone}/${N} parents recorded before`);
    t.true(parentsDone < N, 'the kill left parents unrecorded (otherwise the test proves nothing)');

    await start('node-b');
    await until(
      'every parent and every follow-up finished',
      async () =>
        (await count(s.pool, `SELECT count(*) AS n FROM "${s.schema}".jobs`)) === 0 &&
        (await count(s.pool, `SELECT count(*) AS n FROM "${s.schema}".jobs_history`)) >= 2 * N,
      60_000,
      100,
    );
    const parents = (await s.pool.query(`SELECT id, state, node, attempts FROM "${s.schema}".jobs_history WHERE type = 'parent'`)).rows;
    t.is(parents.length, N, 'each parent recorded once');
    t.true(parents.every((p) => p.state === 'completed'));
    t.true(
      parents.some((p) => p.node === 'node-b' && p.attempts > 1),
      'some parents were rescued and completed on node-b',
    );
    const children = (await s.pool.query(`SELECT payload->>'parent' AS parent FROM "${s.schema}".jobs_history WHERE type = 'child'`)).rows;
    t.is(children.length, N, 'exactly one follow-up per parent');
    t.deepEqual(children.map((c) => c.parent).sort(), [...ids].sort());
  },
);
