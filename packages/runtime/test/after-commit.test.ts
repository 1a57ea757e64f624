import test from 'ava';
import { defineJob, type ContinuationTx, type FinishedJob } from '@partita/runtime';
import { cluster, until } from './helpers.js';

// tx.afterCommit: what a continuation asks to run after its transaction runs once that transaction
// has committed (what the continuation wrote is visible to any other connection by then), and never
// for a transaction that rolled back. Real node, real Postgres.

test('a continuation’s afterCommit runs after the commit, once, and not for a transaction that rolled back', async (t) => {
  const c = await cluster('after_commit');
  try {
    await c.db.pool.query(`CREATE TABLE "${c.db.schema}".test_marks (job_id text PRIMARY KEY, try int NOT NULL)`);
    const tries = new Map<string, number>();
    /** What each after-commit action saw from another connection when it ran, by job id and try. */
    const seen: { job: string; try: number; visible: Promise<number | undefined> }[] = [];
    const parent = defineJob<Record<string, never>>({
      type: 'parent',
      perform: () => null,
      async continuation(tx: ContinuationTx, jobs: FinishedJob[]) {
        for (const j of jobs) {
          const n = (tries.get(j.id) ?? 0) + 1;
          tries.set(j.id, n);
          await tx.query('INSERT INTO {{schema}}.test_marks (job_id, try) VALUES ($1, $2)', [j.id, n]);
          tx.afterCommit(() => {
            // Read on the test's own pool: only a committed row is found there.
            const visible = c.db.pool
              .query(`SELECT try FROM "${c.db.schema}".test_marks WHERE job_id = $1`, [j.id])
              .then((r) => r.rows[0]?.try as number | undefined);
            seen.push({ job: j.id, try: n, visible });
          });
        }
        // The first try of every batch rolls back after asking for its actions: they must not run.
        if (jobs.some((j) => tries.get(j.id) === 1)) throw new Error('first try rolls back');
      },
    });
    const node = await c.start({ partitions: { p: { queues: { default: { concurrency: 4 } } } }, jobs: [parent], engine: { pollMs: 50 } });
    const N = 6;
    const { ids } = await node.client.enqueueMany(
      'p',
      Array.from({ length: N }, () => ({ type: 'parent', payload: {} })),
    );
    await until(
      'every parent recorded',
      async () =>
        (await c.db.pool.query(`SELECT count(*)::int AS n FROM "${c.db.schema}".jobs_history WHERE type = 'parent'`)).rows[0].n === N,
      30_000,
    );
    await until('every action ran', async () => new Set(seen.map((s) => s.job)).size === N, 10_000);
    t.true(
      seen.every((s) => s.try > 1),
      'no action of a rolled-back try ran',
    );
    t.deepEqual(new Set(seen.map((s) => s.job)), new Set(ids), 'each job’s action ran');
    t.is(seen.length, N, 'once each');
    for (const s of seen) t.is(await s.visible, s.try, 'the row its transaction wrote was committed when it ran');
  } finally {
    await c.close();
  }
});
