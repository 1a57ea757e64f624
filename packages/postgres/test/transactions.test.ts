import test from 'ava';
import { JobStore } from '@partita/postgres';
import { freshSchema } from '../../../test/helpers/index.js';

// withTransaction: the ops given its Tx commit together or not at all.

async function setup() {
  const db = await freshSchema('tx');
  const store = await JobStore.open({ postgres: db.url, schema: db.schema });
  await store.registerQueues('node-a', [{ partition: 'p', queue: 'default', concurrency: 4 }]);
  return { db, store, close: async () => (await store.close(), await db.drop()) };
}

test('complete, enqueue and SQL in one transaction commit together; a throw rolls all of them back', async (t) => {
  const { db, store, close } = await setup();
  try {
    await store.enqueue([1, 2].map((i) => ({ partition: 'p', type: 'parent', payload: { i } })));
    const [first, second] = await store.claim({
      nodeId: 'node-a',
      partition: 'p',
      leaseMs: 30_000,
      queues: [{ queue: 'default', limit: 2 }],
    });
    const count = async (sql: string) => Number((await db.pool.query(sql)).rows[0].n);
    const history = `SELECT count(*) AS n FROM "${db.schema}".jobs_history`;
    const children = `SELECT count(*) AS n FROM "${db.schema}".jobs WHERE type = 'child'`;

    const boom = new Error('boom');
    const err = await t.throwsAsync(
      store.withTransaction(async (tx) => {
        const done = await store.complete('node-a', [{ id: first!.id, attempt: first!.attempt, result: 1 }], tx);
        t.true(done.has(first!.id));
        await tx.enqueue([{ partition: 'p', type: 'child', payload: { parent: first!.id } }]);
        const [row] = await tx.query<{ n: string }>(`SELECT count(*) AS n FROM {{schema}}.jobs WHERE type = 'child'`);
        t.is(Number(row!.n), 1, 'the transaction sees its own writes');
        throw boom;
      }),
    );
    t.is(err, boom);
    t.is(await count(history), 0, 'the completion rolled back');
    t.is(await count(children), 0, 'the follow-up rolled back');

    const value = await store.withTransaction(async (tx) => {
      const done = await store.complete('node-a', [{ id: first!.id, attempt: first!.attempt, result: 1 }], tx);
      const failed = await store.fail('node-a', [{ id: second!.id, attempt: second!.attempt, error: null }], tx);
      await tx.enqueue([first!, second!].map((j) => ({ partition: 'p', type: 'child', payload: { parent: j.id } })));
      return done.size + failed.size;
    });
    t.is(value, 2);
    t.is(await count(history), 2);
    t.is(await count(children), 2);
    // The pool's connections are all back and usable.
    t.is((await Promise.all(Array.from({ length: 12 }, () => store.getJob(first!.id)))).filter(Boolean).length, 12);
  } finally {
    await close();
  }
});

test('more concurrent enqueuing transactions than pool connections on a fresh store all commit (the queue check reads through the transaction)', async (t) => {
  const { db, close } = await setup();
  // A store that has not read the queue registry yet, with fewer connections than transactions.
  const fresh = await JobStore.open({ postgres: { connectionString: db.url, max: 2 }, schema: db.schema, migrate: false });
  try {
    const all = Promise.all(
      Array.from({ length: 6 }, (_, i) => fresh.withTransaction((tx) => tx.enqueue([{ partition: 'p', type: 'x', payload: { i } }]))),
    );
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), 15_000)));
    const outcome = await Promise.race([all, stuck]);
    clearTimeout(timer);
    t.not(outcome, 'stuck', 'the transactions waited for a pool connection none of them would give back');
    t.is(Number((await db.pool.query(`SELECT count(*) AS n FROM "${db.schema}".jobs WHERE type = 'x'`)).rows[0].n), 6);
  } finally {
    await fresh.close();
    await close();
  }
});
