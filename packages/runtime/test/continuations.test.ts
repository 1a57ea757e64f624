import { fileURLToPath } from 'node:url';
import test from 'ava';
import { loadOpsFrom } from '@partita/postgres';
import { defineJob, definePlugin, type FinishedJob } from '@partita/runtime';
import { cluster, until } from './helpers.js';

// A continuation runs inside the transaction that records its jobs' outcomes: what it writes exists
// exactly when the outcome does. These run real nodes on real Postgres and count what committed.

const oneQueue = { p: { queues: { default: { concurrency: 16 } } } };
/** Outcomes gather for a while, so several jobs share one flush (and one continuation call). */
const engine = { pollMs: 50, flushMs: 100 };

const child = defineJob<{ parent: string }>({ type: 'child', perform: () => undefined });

test('a continuation that enqueues a follow-up commits it once per completion, batched, with the outcome; a plugin continuation runs SQL in the same transaction', async (t) => {
  const c = await cluster('cont_once');
  try {
    const { db } = c;
    await db.pool.query(`CREATE TABLE "${db.schema}".audit (job uuid NOT NULL, state text NOT NULL)`);
    const batchSizes: number[] = [];
    const parent = defineJob<{ i: number }, { doubled: number }>({
      type: 'parent',
      perform: (p) => ({ doubled: p.i * 2 }),
      async continuation(tx, jobs) {
        batchSizes.push(jobs.length);
        for (const j of jobs)
          if (j.state !== 'completed' || j.result?.doubled !== j.payload.i * 2)
            throw new Error(`unexpected finished job ${JSON.stringify(j)}`);
        await tx.enqueue(jobs.map((j) => ({ partition: j.partition, type: 'child', payload: { parent: j.id } })));
      },
    });
    const node = await c.start({
      partitions: oneQueue,
      jobs: [parent, child],
      engine,
      continuations: [
        {
          name: 'audit',
          types: ['parent'],
          run: async (tx, jobs: FinishedJob[]) => {
            await tx.query('INSERT INTO {{schema}}.audit (job, state) SELECT unnest($1::uuid[]), unnest($2::text[])', [
              jobs.map((j) => j.id),
              jobs.map((j) => j.state),
            ]);
          },
        },
      ],
    });
    const N = 200;
    const { ids } = await node.client.enqueueMany(
      'p',
      Array.from({ length: N }, (_, i) => ({ type: 'parent', payload: { i } })),
    );
    const count = async (sql: string) => Number((await db.pool.query(sql)).rows[0].n);
    await until(
      'every parent and child completed',
      async () => (await count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE state = 'completed'`)) === 2 * N,
      30_000,
    );
    const children = await db.pool.query(`SELECT payload->>'parent' AS parent FROM "${db.schema}".jobs_history WHERE type = 'child'`);
    t.is(children.rowCount, N, 'exactly one follow-up per completed parent');
    t.deepEqual(children.rows.map((r) => r.parent).sort(), [...ids].sort());
    t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".jobs`), 0);
    t.is(await count(`SELECT count(DISTINCT job) AS n FROM "${db.schema}".audit WHERE state = 'completed'`), N);
    t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".audit`), N);
    t.is(
      batchSizes.reduce((a, b) => a + b, 0),
      N,
    );
    t.true(
      batchSizes.some((n) => n > 1),
      `called once per batch, not per job (batch sizes ${batchSizes.join(',')})`,
    );
  } finally {
    await c.close();
  }
});

test('a continuation that throws rolls the completion back; retried, it succeeds: the job completes once, its follow-up exists once', async (t) => {
  const c = await cluster('cont_retry');
  try {
    const { db } = c;
    let performed = 0;
    let calls = 0;
    const parent = defineJob({
      type: 'parent',
      perform: () => {
        performed++;
        return 'done';
      },
      async continuation(tx, jobs) {
        calls++;
        // Written before the throw: it must vanish with the rollback.
        await tx.enqueue(jobs.map((j) => ({ partition: j.partition, type: 'child', payload: { parent: j.id } })));
        if (calls <= 2) throw new Error(`transient trouble #${calls}`);
      },
    });
    const node = await c.start({ partitions: oneQueue, jobs: [parent, child], engine });
    const { id } = await node.client.enqueue('p', 'parent', {});
    const count = async (sql: string, values: unknown[] = []) => Number((await db.pool.query(sql, values)).rows[0].n);
    await until(
      'parent and child completed',
      async () => (await count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE state = 'completed'`)) >= 2,
      30_000,
    );
    await node.stop({ graceMs: 500 });
    t.is(calls, 3, 'two rolled-back tries, then the one that committed');
    t.is(performed, 1, 'the job ran once: its outcome was kept and written again, not run again');
    const [history] = (await db.pool.query(`SELECT state, attempts, result FROM "${db.schema}".jobs_history WHERE id = $1`, [id])).rows;
    t.like(history, { state: 'completed', attempts: 1, result: 'done' });
    t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE id = $1`, [id]), 1);
    t.is(
      await count(`SELECT count(*) AS n FROM (SELECT id FROM "${db.schema}".jobs_history UNION ALL SELECT id FROM "${db.schema}".jobs) j`),
      2,
      'the parent and exactly one follow-up',
    );
    t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE type = 'child' AND payload->>'parent' = $1`, [id]), 1);
  } finally {
    await c.close();
  }
});

test('a continuation whose connection is cut more often than a batch is tried before it is split is written again whole: nothing is failed for an outage', async (t) => {
  const c = await cluster('cont_cut');
  try {
    const { db } = c;
    let calls = 0;
    const parent = defineJob<{ i: number }>({
      type: 'parent',
      perform: (p) => p.i,
      async continuation(tx, jobs) {
        calls++;
        await tx.enqueue(jobs.map((j) => ({ partition: j.partition, type: 'child', payload: { parent: j.id } })));
        // A real outage of this transaction's connection (SQLSTATE 57P01), CONTINUATION_TRIES + 2 times over.
        if (calls <= 5) await tx.query('SELECT pg_terminate_backend(pg_backend_pid())');
      },
    });
    const node = await c.start({ partitions: oneQueue, jobs: [parent, child], engine });
    // One job, so every cut falls on the same batch.
    const N = 1;
    const { ids } = await node.client.enqueueMany(
      'p',
      Array.from({ length: N }, (_, i) => ({ type: 'parent', payload: { i } })),
    );
    const count = async (sql: string, values: unknown[] = []) => Number((await db.pool.query(sql, values)).rows[0].n);
    await until(
      'every parent and follow-up finished',
      async () =>
        (await count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history`)) === 2 * N &&
        (await count(`SELECT count(*) AS n FROM "${db.schema}".jobs`)) === 0,
      60_000,
    );
    await node.stop({ graceMs: 500 });
    t.true(calls > 5, `the cut tries, then the ones that committed (${calls} calls)`);
    t.is(
      await count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE type = 'parent' AND state = 'completed'`),
      N,
      'no parent failed',
    );
    const children = await db.pool.query(`SELECT payload->>'parent' AS parent FROM "${db.schema}".jobs_history WHERE type = 'child'`);
    t.deepEqual(children.rows.map((r) => r.parent).sort(), [...ids].sort(), 'one follow-up per parent');
  } finally {
    await c.close();
  }
});

test('a continuation that always throws for one job fails only that job, with its error; the rest of its batch completes with their follow-ups', async (t) => {
  const c = await cluster('cont_bad');
  try {
    const { db } = c;
    const parent = defineJob<{ i: number; bad?: boolean }>({
      type: 'parent',
      perform: async (p) => {
        // Everyone finishes together, so the bad job shares its flush with the others.
        await new Promise((r) => setTimeout(r, 20));
        return p.i;
      },
      async continuation(tx, jobs) {
        await tx.enqueue(jobs.map((j) => ({ partition: j.partition, type: 'child', payload: { parent: j.id } })));
        const bad = jobs.find((j) => j.payload.bad);
        if (bad) throw new Error(`cannot continue job ${bad.payload.i}`);
      },
    });
    const node = await c.start({ partitions: oneQueue, jobs: [parent, child], engine });
    const N = 12;
    const { ids } = await node.client.enqueueMany(
      'p',
      Array.from({ length: N }, (_, i) => ({ type: 'parent', payload: { i, bad: i === 5 } })),
    );
    const badId = ids[5]!;
    const count = async (sql: string, values: unknown[] = []) => Number((await db.pool.query(sql, values)).rows[0].n);
    await until(
      'every parent finished and every follow-up ran',
      async () =>
        (await count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history`)) === 2 * N - 1 &&
        (await count(`SELECT count(*) AS n FROM "${db.schema}".jobs`)) === 0,
      30_000,
    );
    const [bad] = (await db.pool.query(`SELECT state, errors FROM "${db.schema}".jobs_history WHERE id = $1`, [badId])).rows;
    t.is(bad.state, 'failed');
    t.is(bad.errors.length, 1);
    t.regex(bad.errors[0].message, /continuation parent\.continuation threw: cannot continue job 5/);
    t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE type = 'parent' AND state = 'completed'`), N - 1);
    const children = await db.pool.query(`SELECT payload->>'parent' AS parent FROM "${db.schema}".jobs_history WHERE type = 'child'`);
    t.is(children.rowCount, N - 1, 'one follow-up per completed parent, none for the failed one');
    t.deepEqual(children.rows.map((r) => r.parent).sort(), ids.filter((id) => id !== badId).sort());
  } finally {
    await c.close();
  }
});

test('a continuation sees final failures and cancels, not retried attempts', async (t) => {
  const c = await cluster('cont_fail');
  try {
    const { db } = c;
    const seen: FinishedJob[] = [];
    const flaky = defineJob({
      type: 'flaky',
      maxAttempts: 2,
      backoff: { baseMs: 10, maxMs: 10 },
      perform: (_p, ctx) => {
        throw new Error(`attempt ${ctx.attempt} broke`);
      },
      continuation: (_tx, jobs) => void seen.push(...jobs),
    });
    const node = await c.start({ partitions: oneQueue, jobs: [flaky], engine });
    const { id } = await node.client.enqueue('p', 'flaky', { x: 1 });
    await until(
      'failed for good',
      async () => (await db.pool.query(`SELECT 1 FROM "${db.schema}".jobs_history WHERE id = $1`, [id])).rowCount === 1,
      30_000,
    );
    t.is(seen.length, 1);
    t.like(seen[0], { id, type: 'flaky', state: 'failed', attempt: 2, payload: { x: 1 }, error: { message: 'attempt 2 broke' } });
  } finally {
    await c.close();
  }
});

test('only outcomes the store accepted reach the continuation: a job whose lease another node took gets no follow-up', async (t) => {
  const c = await cluster('cont_lease');
  try {
    const { db } = c;
    const seen: string[] = [];
    const parent = defineJob<{ stolen: boolean }>({
      type: 'parent',
      async perform(p, ctx) {
        // Another node took the job over while it ran (as a rescue would): this node's completion is refused.
        if (p.stolen) await db.pool.query(`UPDATE "${db.schema}".jobs SET locked_by = 'node-x' WHERE id = $1`, [ctx.id]);
        return 'done';
      },
      async continuation(tx, jobs) {
        seen.push(...jobs.map((j) => j.id));
        await tx.enqueue(jobs.map((j) => ({ partition: j.partition, type: 'child', payload: { parent: j.id } })));
      },
    });
    const node = await c.start({ partitions: oneQueue, jobs: [parent, child], engine });
    const { ids } = await node.client.enqueueMany('p', [
      { type: 'parent', payload: { stolen: true } },
      { type: 'parent', payload: { stolen: false } },
    ]);
    const [stolen, kept] = ids as [string, string];
    const count = async (sql: string, values: unknown[] = []) => Number((await db.pool.query(sql, values)).rows[0].n);
    await until(
      'the kept parent and its child completed',
      async () => (await count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE state = 'completed'`)) === 2,
      30_000,
    );
    await node.stop({ graceMs: 500 });
    t.deepEqual(seen, [kept]);
    t.like((await db.pool.query(`SELECT state, locked_by FROM "${db.schema}".jobs WHERE id = $1`, [stolen])).rows[0], {
      state: 'running',
      locked_by: 'node-x',
    });
    t.is(
      await count(
        `SELECT count(*) AS n FROM (SELECT payload FROM "${db.schema}".jobs_history UNION ALL SELECT payload FROM "${db.schema}".jobs) j WHERE payload->>'parent' = $1`,
        [stolen],
      ),
      0,
    );
  } finally {
    await c.close();
  }
});

test('a plugin attaches a continuation by predicate: types it learns while the node runs are followed from then on', async (t) => {
  const c = await cluster('cont_plugin');
  try {
    const { db } = c;
    await db.pool.query(`CREATE TABLE "${db.schema}".followed (job uuid NOT NULL, type text NOT NULL)`);
    // What a workflow plugin does: its worker topics become known as versions are deployed.
    const followed = new Set<string>(['alpha']);
    const plugin = definePlugin({
      name: 'follower',
      continuations: () => [
        {
          name: 'follower.record',
          types: (type: string) => followed.has(type),
          run: async (tx, jobs: FinishedJob[]) => {
            await tx.query('INSERT INTO {{schema}}.followed (job, type) SELECT unnest($1::uuid[]), unnest($2::text[])', [
              jobs.map((j) => j.id),
              jobs.map((j) => j.type),
            ]);
          },
        },
      ],
    });
    const types = ['alpha', 'beta', 'gamma'].map((type) => defineJob({ type, perform: () => undefined }));
    const node = await c.start({ partitions: oneQueue, jobs: types, engine, plugins: [plugin] });
    const runAll = async (round: number) => {
      await node.client.enqueueMany(
        'p',
        ['alpha', 'beta', 'gamma'].flatMap((type) => Array.from({ length: 5 }, (_, i) => ({ type, payload: { round, i } }))),
      );
      await until(
        `round ${round} completed`,
        async () =>
          Number((await db.pool.query(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE state = 'completed'`)).rows[0].n) ===
          15 * round,
        20_000,
      );
    };
    const byType = async () =>
      Object.fromEntries(
        (await db.pool.query(`SELECT type, count(*)::int AS n FROM "${db.schema}".followed GROUP BY type ORDER BY type`)).rows.map((r) => [
          r.type,
          r.n,
        ]),
      );
    await runAll(1);
    t.deepEqual(await byType(), { alpha: 5 }, 'only the types the predicate accepts are followed');
    followed.add('gamma');
    await runAll(2);
    t.deepEqual(await byType(), { alpha: 10, gamma: 5 }, 'a type added while the node runs is followed from its next outcomes');
  } finally {
    await c.close();
  }
});

test('a batch whose continuations all ask for generic plans runs their marked statements generically; a continuation that does not ask keeps the connection’s plans', async (t) => {
  const c = await cluster('cont_plans');
  try {
    // A statement marked `-- plan: generic` that reads back how it was planned.
    const ops = loadOpsFrom<'marked'>(
      fileURLToPath(new URL('../../postgres/test/fixtures/plan-ops/', import.meta.url)),
      c.db.schema,
      'test',
    );
    const seen: { continuation: string; mode: string; seqscan: string }[] = [];
    const probe =
      (name: string) => async (tx: { client: { query: (q: object) => Promise<{ rows: { mode: string; seqscan: string }[] }> } }) => {
        const { rows } = await tx.client.query({ ...ops.marked, values: [1] });
        seen.push({ continuation: name, mode: rows[0]!.mode, seqscan: rows[0]!.seqscan });
      };
    const node = await c.start({
      partitions: oneQueue,
      jobs: [defineJob({ type: 'g', perform: () => null }), defineJob({ type: 'c', perform: () => null, continuation: probe('custom') })],
      engine,
      continuations: [{ name: 'generic', types: ['g'], genericPlans: true, run: probe('generic') }],
    });
    const finished = async (n: number) =>
      until(
        'the jobs finished',
        async () => Number((await c.db.pool.query(`SELECT count(*) AS n FROM "${c.db.schema}".jobs_history`)).rows[0].n) === n,
        30_000,
      );
    await node.client.enqueueMany(
      'p',
      Array.from({ length: 20 }, () => ({ type: 'g' })),
    );
    await finished(20);
    t.true(seen.length > 0);
    t.deepEqual([...new Set(seen.map((s) => `${s.continuation} ${s.mode} ${s.seqscan}`))], ['generic force_generic_plan off']);
    seen.length = 0;
    await node.client.enqueueMany(
      'p',
      Array.from({ length: 20 }, () => ({ type: 'c' })),
    );
    await finished(40);
    t.deepEqual([...new Set(seen.map((s) => `${s.continuation} ${s.mode} ${s.seqscan}`))], ['custom force_custom_plan on']);
  } finally {
    await c.close();
  }
});

test('a batch commits without the WAL flush (synchronous_commit off) only when every continuation that ran in it asked (tx.commitAsync) and no job of it has outcome callbacks', async (t) => {
  const c = await cluster('cont_async');
  try {
    const q = `"${c.db.schema}"`;
    // A deferred constraint trigger runs at COMMIT: it records the synchronous_commit the commit ran with.
    await c.db.pool.query(`
      CREATE TABLE ${q}.audit (job uuid NOT NULL, type text NOT NULL);
      CREATE TABLE ${q}.audit_seen (job uuid NOT NULL, type text NOT NULL, sc text NOT NULL);
      CREATE FUNCTION ${q}.audit_seen_record() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO ${q}.audit_seen VALUES (NEW.job, NEW.type, current_setting('synchronous_commit'));
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER audit_seen AFTER INSERT ON ${q}.audit DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION ${q}.audit_seen_record();
    `);
    let succeeded = 0;
    const node = await c.start({
      partitions: oneQueue,
      jobs: [
        defineJob({ type: 'quiet', perform: () => null }),
        // Its own continuation does not ask: the batch's commit stays synchronous.
        defineJob({ type: 'mixed', perform: () => null, continuation: () => undefined }),
        // onSuccess tells user code the outcome was recorded.
        defineJob({ type: 'hooked', perform: () => null, onSuccess: () => void succeeded++ }),
      ],
      engine,
      continuations: [
        {
          name: 'relaxed',
          types: ['quiet', 'mixed', 'hooked'],
          run: async (tx, jobs: FinishedJob[]) => {
            await tx.query('INSERT INTO {{schema}}.audit (job, type) SELECT unnest($1::uuid[]), unnest($2::text[])', [
              jobs.map((j) => j.id),
              jobs.map((j) => j.type),
            ]);
            tx.commitAsync();
          },
        },
      ],
    });
    const N = 20;
    // One type at a time: a batch of two types commits as the strictest of them.
    for (const type of ['quiet', 'mixed', 'hooked']) {
      await node.client.enqueueMany(
        'p',
        Array.from({ length: N }, () => ({ type })),
      );
      await until(
        `the ${type} jobs recorded`,
        async () => Number((await c.db.pool.query(`SELECT count(*) AS n FROM ${q}.audit_seen WHERE type = $1`, [type])).rows[0].n) === N,
        30_000,
      );
    }
    const { rows } = await c.db.pool.query(`SELECT type, sc, count(*)::int AS n FROM ${q}.audit_seen GROUP BY type, sc ORDER BY type`);
    t.deepEqual(rows, [
      { type: 'hooked', sc: 'on', n: N },
      { type: 'mixed', sc: 'on', n: N },
      { type: 'quiet', sc: 'off', n: N },
    ]);
    await until('the callbacks ran', async () => succeeded === N, 10_000);
  } finally {
    await c.close();
  }
});
