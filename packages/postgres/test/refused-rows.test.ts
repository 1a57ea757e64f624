import test from 'ava';
import { JobStore } from '@partita/postgres';
import { freshSchema, type TestSchema } from '../../../test/helpers/index.js';

// One row the database refuses must not sink the batch it travels in: the store records the
// others and reports that row, so the engine can fail just that job.

async function withClaimed(n: number, fn: (store: JobStore, ids: string[], db: TestSchema) => Promise<void>): Promise<void> {
  const db = await freshSchema('refused');
  const store = await JobStore.open({ postgres: db.url, schema: db.schema });
  try {
    await store.registerQueues('n', [{ partition: 'p', queue: 'default', concurrency: n }]);
    const outcomes = await store.enqueue(Array.from({ length: n }, (_, i) => ({ partition: 'p', type: 't', payload: { i } })));
    const claimed = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 60_000, queues: [{ queue: 'default', limit: n }] });
    const byId = new Map(claimed.map((j) => [j.id, j]));
    await fn(
      store,
      outcomes.map((o) => byId.get(o.id)!.id),
      db,
    );
  } finally {
    await store.close();
    await db.drop();
  }
}

test('complete: a result Postgres refuses (a NUL character in jsonb) is reported; the rest of the batch completes', async (t) => {
  await withClaimed(7, async (store, ids) => {
    const items = ids.map((id, i) => ({ id, attempt: 1, result: { i } as unknown, ...(i === 4 ? { json: '{"name":"a\\u0000b"}' } : {}) }));
    const accepted = await store.complete('n', items);
    t.deepEqual([...accepted].sort(), ids.filter((_, i) => i !== 4).sort());
    t.deepEqual([...accepted.refused.keys()], [ids[4]]);
    t.regex(accepted.refused.get(ids[4]!)!, /Postgres refused to store it \(.*\\u0000.*SQLSTATE 22P05\)/);
    t.is((await store.getJob(ids[4]!))?.state, 'running', 'the refused row is left as it was, for its job to be failed');
    for (const [i, id] of ids.entries()) if (i !== 4) t.deepEqual((await store.getJob(id))?.result, { i });
  });
});

test('complete: a result that is not JSON at all is refused by the store without costing the batch', async (t) => {
  await withClaimed(3, async (store, ids) => {
    const accepted = await store.complete('n', [
      { id: ids[0]!, attempt: 1, result: 1 },
      { id: ids[1]!, attempt: 1, result: { total: NaN } },
      { id: ids[2]!, attempt: 1, result: 3 },
    ]);
    t.deepEqual([...accepted].sort(), [ids[0], ids[2]].sort());
    t.regex(accepted.refused.get(ids[1]!)!, /^result\.total: is NaN/);
  });
});

test('fail and release: rows a constraint refuses are reported, their batch-mates are recorded', async (t) => {
  await withClaimed(6, async (store, ids, db) => {
    await db.pool.query(`ALTER TABLE "${db.schema}".jobs_history ADD CONSTRAINT no_poison CHECK (errors::text NOT LIKE '%poison%')`);
    const error = (message: string) => ({ attempt: 1, at: new Date().toISOString(), name: 'Error', message });
    const failed = await store.fail('n', [
      { id: ids[0]!, attempt: 1, error: error('fine') },
      { id: ids[1]!, attempt: 1, error: error('poison') },
      { id: ids[2]!, attempt: 1, error: error('also fine') },
    ]);
    t.deepEqual([...failed].sort(), [ids[0], ids[2]].sort());
    t.deepEqual([...failed.refused.keys()], [ids[1]]);
    t.regex(failed.refused.get(ids[1]!)!, /no_poison.*SQLSTATE 23514/);
    t.is((await store.getJob(ids[1]!))?.state, 'running');

    // A release records an execution key derived by the node; a constraint refuses one of them.
    await db.pool.query(`ALTER TABLE "${db.schema}".jobs ADD CONSTRAINT no_refused_key CHECK (execution_key IS DISTINCT FROM 'refused')`);
    const { released, refused } = await store.release('n', [
      { id: ids[3]!, attempt: 1 },
      { id: ids[4]!, attempt: 1, executionKey: 'refused' },
      { id: ids[5]!, attempt: 1 },
    ]);
    t.deepEqual([...released].sort(), [ids[3], ids[5]].sort());
    t.deepEqual([...refused.keys()], [ids[4]]);
  });
});

test('a failure that is not a property of a row (the store is closed) still rejects the whole call', async (t) => {
  await withClaimed(2, async (_store, ids, db) => {
    const other = await JobStore.open({ postgres: db.url, schema: db.schema, migrate: false });
    await other.close();
    await t.throwsAsync(
      other.complete(
        'n',
        ids.map((id) => ({ id, attempt: 1, result: null })),
      ),
    );
  });
});

test('a lock timeout is not a refused row: the whole call rejects and nothing of the batch is written', async (t) => {
  await withClaimed(3, async (store, ids, db) => {
    const impatient = await JobStore.open({ postgres: { connectionString: db.url, lock_timeout: 200 }, schema: db.schema, migrate: false });
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${db.schema}".jobs WHERE id = $1 FOR UPDATE`, [ids[1]]);
      const err = await t.throwsAsync(
        impatient.complete(
          'n',
          ids.map((id) => ({ id, attempt: 1, result: null })),
        ),
      );
      t.is((err as { code?: string }).code, '55P03');
      await holder.query('ROLLBACK');
      for (const id of ids) t.is((await store.getJob(id))?.state, 'running');
    } finally {
      holder.release();
      await impatient.close();
    }
  });
});
