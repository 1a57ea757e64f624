import { fileURLToPath } from 'node:url';
import test from 'ava';
import type pg from 'pg';
import { JobStore, loadOpsFrom } from '@partita/postgres';
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

test('a last statement sent behind which COMMIT is queued (tx.sendLast) commits with the rest; if it fails the whole transaction rolls back and rejects with its error', async (t) => {
  const { db, store, close } = await setup();
  try {
    await db.pool.query(`CREATE TABLE "${db.schema}".tail_t (id int PRIMARY KEY)`);
    const insert = (id: number) => ({
      name: `tail_t_insert_${db.schema}`,
      text: `INSERT INTO "${db.schema}".tail_t (id) VALUES ($1)`,
      values: [id],
    });
    const rows = async () => (await db.pool.query(`SELECT id FROM "${db.schema}".tail_t ORDER BY id`)).rows.map((r) => r.id as number);
    const jobs = async () => Number((await db.pool.query(`SELECT count(*) AS n FROM "${db.schema}".jobs WHERE type = 'tail'`)).rows[0].n);

    // Not awaited by the function: COMMIT follows it on the wire, and the rows are there once it resolves.
    await store.withTransaction(async (tx) => {
      await tx.enqueue([{ partition: 'p', type: 'tail' }]);
      await tx.query(`INSERT INTO {{schema}}.tail_t (id) VALUES (1)`);
      void tx.sendLast(insert(2));
    });
    t.deepEqual(await rows(), [1, 2]);
    t.is(await jobs(), 1);

    // The last statement fails (a duplicate key) after the function returned: everything before it in
    // the transaction is undone, and the rejection is the statement's own error, not a bare rollback.
    const err = await t.throwsAsync(
      store.withTransaction(async (tx) => {
        await tx.enqueue([{ partition: 'p', type: 'tail' }]);
        await tx.query(`INSERT INTO {{schema}}.tail_t (id) VALUES (3)`);
        void tx.sendLast(insert(1));
        return 'reported committed';
      }),
    );
    t.is((err as { code?: string }).code, '23505', String(err));
    t.deepEqual(await rows(), [1, 2], 'the earlier insert rolled back');
    t.is(await jobs(), 1, 'the enqueue rolled back');

    // A statement awaited after a failed last statement is refused as in a failed transaction; the
    // error that surfaces is still the one that said why.
    const again = await t.throwsAsync(
      store.withTransaction(async (tx) => {
        void tx.sendLast(insert(2));
        await tx.query(`INSERT INTO {{schema}}.tail_t (id) VALUES (4)`);
      }),
    );
    t.is((again as { code?: string }).code, '23505');
    t.deepEqual(await rows(), [1, 2]);

    // Two last statements, the first failing: the transaction rejects with the first's error as its
    // mapError made it, not with the second's 25P02 (heard first had the mapping taken a turn more).
    class Taken extends Error {}
    const mapped = await t.throwsAsync(
      store.withTransaction(async (tx) => {
        void tx.sendLast(insert(1), (e) => new Taken(String((e as { code?: string }).code))).catch(() => undefined);
        void tx.sendLast(insert(7)).catch(() => undefined);
      }),
    );
    t.true(mapped instanceof Taken, String(mapped));
    t.is(mapped?.message, '23505');
    t.deepEqual(await rows(), [1, 2]);

    // A failure whose rejection the function swallowed: the server answers COMMIT with ROLLBACK,
    // and the transaction is not reported committed.
    const swallowed = await t.throwsAsync(
      store.withTransaction(async (tx) => {
        await tx.query(`INSERT INTO {{schema}}.tail_t (id) VALUES (5)`);
        await tx.query(`INSERT INTO {{schema}}.tail_t (id) VALUES (1)`).catch(() => undefined);
      }),
    );
    t.is(swallowed?.name, 'TransactionRolledBackError');
    t.deepEqual(await rows(), [1, 2]);

    // A statement pg cannot even send (a value that does not serialize): the COMMIT does not go out
    // without it.
    const unsent = await t.throwsAsync(
      store.withTransaction(async (tx) => {
        await tx.query(`INSERT INTO {{schema}}.tail_t (id) VALUES (6)`);
        // Unnamed: pg caches a named statement as prepared even when its values fail to serialize.
        void tx.sendLast({
          text: `INSERT INTO "${db.schema}".tail_t (id) VALUES ($1)`,
          values: [
            {
              toPostgres() {
                throw new Error('cannot serialize');
              },
            },
          ],
        });
      }),
    );
    t.is(unsent?.message, 'cannot serialize');
    t.deepEqual(await rows(), [1, 2]);

    // The connections went back clean: the pool still runs transactions.
    await Promise.all(Array.from({ length: 12 }, (_, i) => store.withTransaction(async (tx) => void tx.sendLast(insert(10 + i)))));
    t.is((await rows()).length, 14);
  } finally {
    await close();
  }
});

/**
 * A deferred constraint trigger on `table` recording, at COMMIT, the synchronous_commit each of its
 * rows' transactions committed with (the setting a COMMIT reads, whenever in the transaction it was set).
 */
async function recordCommitSetting(
  db: { pool: pg.Pool; schema: string },
  table: string,
): Promise<() => Promise<{ id: number; sc: string }[]>> {
  const q = `"${db.schema}"`;
  await db.pool.query(`
    CREATE TABLE ${q}.commit_seen (id int NOT NULL, sc text NOT NULL);
    CREATE FUNCTION ${q}.commit_seen_record() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO ${q}.commit_seen VALUES (NEW.id, current_setting('synchronous_commit'));
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER commit_seen AFTER INSERT ON ${q}.${table} DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION ${q}.commit_seen_record();
  `);
  return async () => (await db.pool.query(`SELECT id, sc FROM ${q}.commit_seen ORDER BY id`)).rows;
}

test('tx.commitAsync: that transaction commits with synchronous_commit off, wherever in it the call comes (a last statement already sent too); the next one on the connection commits as before', async (t) => {
  const { db, close } = await setup();
  // One connection: each transaction below runs on the same one as the last.
  const store = await JobStore.open({ postgres: { connectionString: db.url, max: 1 }, schema: db.schema, migrate: false });
  try {
    await db.pool.query(`CREATE TABLE "${db.schema}".relaxed_t (id int PRIMARY KEY)`);
    const seen = await recordCommitSetting(db, 'relaxed_t');
    const insert = (id: number) => ({
      name: `relaxed_t_insert_${db.schema}`,
      text: `INSERT INTO "${db.schema}".relaxed_t (id) VALUES ($1)`,
      values: [id],
    });
    await store.withTransaction(async (tx) => void (await tx.query(`INSERT INTO {{schema}}.relaxed_t (id) VALUES (1)`)));
    const during = await store.withTransaction(async (tx) => {
      tx.commitAsync();
      await tx.query(`INSERT INTO {{schema}}.relaxed_t (id) VALUES (2)`);
      return (await tx.query<{ sc: string }>(`SELECT current_setting('synchronous_commit') AS sc`))[0]!.sc;
    });
    t.is(during, 'off', 'set at once, for the statements after it too');
    // Called after the last statement went on the wire: between it and the COMMIT.
    await store.withTransaction(async (tx) => {
      void tx.sendLast(insert(3));
      tx.commitAsync();
      tx.commitAsync();
    });
    await store.withTransaction(async (tx) => void tx.sendLast(insert(4)));
    // Rolled back: nothing of it commits, and the setting goes with it.
    await t.throwsAsync(
      store.withTransaction(async (tx) => {
        await tx.query(`INSERT INTO {{schema}}.relaxed_t (id) VALUES (5)`);
        tx.commitAsync();
        throw new Error('no');
      }),
      { message: 'no' },
    );
    await store.withTransaction(async (tx) => void tx.sendLast(insert(6)));
    t.deepEqual(await seen(), [
      { id: 1, sc: 'on' },
      { id: 2, sc: 'off' },
      { id: 3, sc: 'off' },
      { id: 4, sc: 'on' },
      { id: 6, sc: 'on' },
    ]);
    t.is(
      (await store.pool.query(`SELECT current_setting('synchronous_commit') AS sc`)).rows[0].sc,
      'on',
      'the connection went back as it was',
    );
  } finally {
    await store.close();
    await close();
  }
});

test('tx.sendLeased answers with the ids once its statement is sent, before its answer; the jobs are the node’s once committed, and a failure of the statement rolls the transaction back', async (t) => {
  const { db, store, close } = await setup();
  try {
    const state = async (ids: string[]) =>
      (await db.pool.query(`SELECT id, state, locked_by FROM "${db.schema}".jobs WHERE id = ANY($1::uuid[]) ORDER BY id`, [ids])).rows.map(
        (r) => ({ state: r.state as string, lockedBy: r.locked_by as string | null }),
      );

    // The store reads the queue registry once (through the transaction): read here, not behind the slow statement.
    await store.enqueue([{ partition: 'p', type: 'warm' }]);
    // A slow statement sent ahead: an answer awaited before resolving would come after its answer.
    let slowAnswered = false;
    let answeredFirst: boolean | undefined;
    let stored: Promise<{ id: string; claimed: unknown }[]> | undefined;
    const ids = await store.withTransaction(async (tx) => {
      const slow = tx.query('SELECT pg_sleep(0.3)').then(() => (slowAnswered = true));
      const sent = await tx.sendLeased(
        [
          { partition: 'p', type: 'leased', payload: { n: 1 } },
          { partition: 'p', type: 'leased', payload: { n: 2 } },
        ],
        'node-a',
        30_000,
      );
      answeredFirst = slowAnswered;
      stored = sent.stored;
      await slow;
      return sent.ids;
    });
    t.false(answeredFirst, 'the ids came before the answer of a statement sent ahead of the enqueue');
    t.is(ids.length, 2);
    const outcomes = await stored!;
    t.deepEqual(
      outcomes.map((o) => o.id),
      ids,
    );
    t.true(
      outcomes.every((o) => (o.claimed as { attempt?: number } | null)?.attempt === 1),
      'each stored as the node’s running attempt',
    );
    t.deepEqual(await state([...ids].sort()), [
      { state: 'running', lockedBy: 'node-a' },
      { state: 'running', lockedBy: 'node-a' },
    ]);

    // An id already taken fails the statement after the function returned: nothing of the
    // transaction is kept, it rejects with the statement's error, and `stored` rejects too.
    let failedStored: Promise<unknown> | undefined;
    const err = await t.throwsAsync(
      store.withTransaction(async (tx) => {
        await tx.enqueue([{ partition: 'p', type: 'before' }]);
        const sent = await tx.sendLeased([{ partition: 'p', type: 'leased', id: ids[0]! }], 'node-a', 30_000);
        failedStored = sent.stored;
      }),
    );
    t.is((err as { code?: string }).code, '23505', String(err));
    await t.throwsAsync(failedStored!);
    t.is(Number((await db.pool.query(`SELECT count(*) AS n FROM "${db.schema}".jobs WHERE type = 'before'`)).rows[0].n), 0);

    // A job that is never leased is refused before anything is sent.
    await t.throwsAsync(
      store.withTransaction((tx) => tx.sendLeased([{ partition: 'p', type: 'leased', executionKey: 'k' }], 'node-a', 1000)),
      { message: /claimed, never leased/ },
    );
  } finally {
    await close();
  }
});

test('a transaction with genericPlans plans the statements marked generic so, and every other one, before or after, as the connection does', async (t) => {
  const { store, close } = await setup();
  try {
    const ops = loadOpsFrom<'marked' | 'unmarked'>(fileURLToPath(new URL('fixtures/plan-ops/', import.meta.url)), store.schema, 'test');
    t.true(ops.marked.generic);
    t.falsy(ops.unmarked.generic);
    type Settings = { mode: string; seqscan: string };
    const settings = async (q: pg.PoolClient | pg.Pool, op: 'marked' | 'unmarked') =>
      (await q.query<Settings & { n: number }>({ ...ops[op], values: [1] })).rows.map(({ mode, seqscan }) => ({ mode, seqscan }))[0];
    const generic = { mode: 'force_generic_plan', seqscan: 'off' };
    const connection = { mode: 'force_custom_plan', seqscan: 'on' };
    const seen = await store.withTransaction(
      async (tx) => [
        await settings(tx.client, 'marked'),
        await settings(tx.client, 'unmarked'),
        (
          await tx.query<Settings>(
            `SELECT current_setting('plan_cache_mode') AS mode, current_setting('enable_seqscan') AS seqscan WHERE $1::int = 1`,
            [1],
          )
        )[0],
        await settings(tx.client, 'marked'),
        await settings(tx.client, 'marked'),
      ],
      { genericPlans: true },
    );
    t.deepEqual(seen, [generic, connection, connection, generic, generic]);
    // Without the option every statement keeps the connection's settings; after the transaction too.
    t.deepEqual(await store.withTransaction(async (tx) => settings(tx.client, 'marked')), connection);
    t.deepEqual(await settings(store.pool, 'marked'), connection);
  } finally {
    await close();
  }
});
