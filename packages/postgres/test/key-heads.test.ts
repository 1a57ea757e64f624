import test from 'ava';
import { JobStore, loadOps } from '@partita/postgres';
import { freshSchema, type TestSchema } from '../../../test/helpers/index.js';

// Execution key heads (migration 0013): one job per key is queued or running, the rest wait outside
// the claim index, and each statement that ends a key's head hands the turn to its next job.

interface PlanNode {
  'Node Type': string;
  Operation?: string;
  'Relation Name'?: string;
  'Actual Rows': number;
  Plans?: PlanNode[];
}

const flatten = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(flatten)];

interface Ctx {
  db: TestSchema;
  store: JobStore;
}

function withStore(title: string, fn: (t: import('ava').ExecutionContext, c: Ctx) => Promise<void>) {
  test(title, async (t) => {
    const db = await freshSchema('keyheads');
    const store = await JobStore.open({ postgres: db.url, schema: db.schema });
    await store.registerQueues('node-a', [{ partition: 'p', queue: 'default', concurrency: 4 }]);
    try {
      await fn(t, { db, store });
    } finally {
      await store.close();
      await db.drop();
    }
  });
}

const claim = (store: JobStore, limit = 10, nodeId = 'node-a') =>
  store.claim({ nodeId, partition: 'p', leaseMs: 30_000, queues: [{ queue: 'default', limit }] });

/** Until a statement waits for another transaction's row lock (at most 5 s: the test's own checks then fail). */
async function someoneWaitsOnATransaction(db: TestSchema): Promise<void> {
  for (let waited = 0; waited < 5000; waited += 20) {
    const { rows } = await db.pool.query(`SELECT 1 FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'`);
    if (rows.length > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function states(db: TestSchema, key: string): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ state: string; n: number }>(
    `SELECT state, count(*)::int AS n FROM "${db.schema}".jobs WHERE execution_key = $1 GROUP BY state`,
    [key],
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

withStore('jobs behind a running key wait outside the claim index and run one by one in order', async (t, { store, db }) => {
  const outcomes = await store.enqueue(
    Array.from({ length: 2000 }, (_, i) => ({ partition: 'p', type: 'k', executionKey: 'hot', payload: { i } })),
  );
  t.deepEqual(await states(db, 'hot'), { queued: 1, waiting: 1999 }, 'only the first is claimable');
  const [holder] = await claim(store);
  t.is(holder?.id, outcomes[0]!.id);
  t.deepEqual(await claim(store), [], 'nothing else of the key is claimable while it runs');
  // The claim does not even see the waiting jobs: its scan of the claim index reads no row of them.
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM "${db.schema}".jobs WHERE partition = 'p' AND queue = 'default' AND state = 'queued'`,
  );
  t.is(rows[0]!.n, 0);
  t.is((await store.getJob(outcomes[1]!.id))?.state, 'waiting');
  // Each completion hands the key to the next job in enqueue order, in the same call.
  const ran: number[] = [(holder!.payload as { i: number }).i];
  let current = holder!;
  for (let n = 0; n < 5; n++) {
    await store.complete('node-a', [{ id: current.id, attempt: current.attempt, result: null }]);
    const next = await claim(store);
    t.is(next.length, 1);
    current = next[0]!;
    ran.push((current.payload as { i: number }).i);
  }
  t.deepEqual(ran, [0, 1, 2, 3, 4, 5]);
  t.deepEqual(await states(db, 'hot'), { running: 1, waiting: 1994 });
  const keys = await store.executionKeys('p');
  t.is(keys.hot?.holder, current.id);
  // The snapshot names the first few jobs behind the holder, in order, and counts them all.
  t.deepEqual(
    keys.hot?.waiters,
    outcomes.slice(6, 16).map((o) => o.id),
  );
  t.is(keys.hot?.waiting, 1994);
});

withStore('a retried attempt lets the next job of its key run meanwhile, as before heads', async (t, { store, db }) => {
  const [a, b] = await store.enqueue([
    { partition: 'p', type: 'k', executionKey: 'r', maxAttempts: 3 },
    { partition: 'p', type: 'k', executionKey: 'r' },
  ]);
  const [first] = await claim(store);
  t.is(first?.id, a!.id);
  await store.fail('node-a', [
    {
      id: a!.id,
      attempt: 1,
      error: { name: 'E', message: 'again', attempt: 1, at: new Date().toISOString() },
      retryAt: new Date(Date.now() + 60_000),
    },
  ]);
  const [second] = await claim(store);
  t.is(second?.id, b!.id, 'the next job took the key while the failed one backs off');
  t.is((await store.getJob(a!.id))?.state, 'waiting');
  t.deepEqual(await store.executionKeys('p'), { r: { holder: b!.id, waiters: [a!.id], waiting: 1 } });
  await store.complete('node-a', [{ id: b!.id, attempt: 1, result: null }]);
  // The retried job is the key's head again, scheduled for its retry time.
  t.deepEqual(await states(db, 'r'), { queued: 1 });
  t.is((await store.getJob(a!.id))?.state, 'scheduled');
});

withStore(
  'cancelling, deleting or handing back a key head passes the key on; the last one drops the head row',
  async (t, { store, db }) => {
    const jobs = await store.enqueue(
      Array.from({ length: 4 }, (_, i) => ({ partition: 'p', type: 'k', executionKey: 'c', payload: { i } })),
    );
    await store.cancel([jobs[0]!.id]);
    t.is((await store.getJob(jobs[1]!.id))?.state, 'queued', 'cancel of the queued head promotes the next');
    await store.deleteMatching({ ids: [jobs[1]!.id] }, 10);
    t.is((await store.getJob(jobs[2]!.id))?.state, 'queued', 'delete of the head promotes the next');
    const [c] = await claim(store);
    t.is(c?.id, jobs[2]!.id);
    await store.release('node-a', [{ id: c!.id, attempt: c!.attempt }]);
    t.is((await store.getJob(jobs[2]!.id))?.state, 'queued', 'a handed-back head is the first in order again');
    t.is((await store.getJob(jobs[3]!.id))?.state, 'waiting');
    await store.cancel([jobs[2]!.id, jobs[3]!.id]);
    const { rows } = await db.pool.query(`SELECT * FROM "${db.schema}".execution_key_heads`);
    t.deepEqual(rows, [], 'a key with no live job keeps no row');
    // A later job of the key is its head at once.
    const [d] = await store.enqueue([{ partition: 'p', type: 'k', executionKey: 'c' }]);
    t.is((await store.getJob(d!.id))?.state, 'queued');
  },
);

withStore('a key released by hand passes to its next job while the holder keeps running', async (t, { store }) => {
  const [a, b] = await store.enqueue([
    { partition: 'p', type: 'k', executionKey: 'm' },
    { partition: 'p', type: 'k', executionKey: 'm' },
  ]);
  await claim(store);
  t.deepEqual(await store.releaseExecutionKey('p', 'm'), { id: a!.id, queue: 'default' });
  const [next] = await claim(store);
  t.is(next?.id, b!.id);
});

withStore('a head left behind by a crash between a statement and its settle is settled by the rescue passes', async (t, { store, db }) => {
  const [a, b] = await store.enqueue([
    { partition: 'p', type: 'k', executionKey: 's' },
    { partition: 'p', type: 'k', executionKey: 's' },
  ]);
  // As if the node died after deleting its head and before settling: the head row names a gone job.
  await db.pool.query(`DELETE FROM "${db.schema}".jobs WHERE id = $1`, [a!.id]);
  t.deepEqual(await claim(store), []);
  await store.rescueExpired();
  t.deepEqual(await claim(store), [], 'a key found unsettled once may be settling right now: left alone');
  await store.rescueExpired();
  const [next] = await claim(store);
  t.is(next?.id, b!.id);
  // And waiting jobs whose key has no head row at all (their settle failed): found by their key.
  const [c, d] = await store.enqueue([
    { partition: 'p', type: 'k', executionKey: 'o' },
    { partition: 'p', type: 'k', executionKey: 'o' },
  ]);
  await db.pool.query(`DELETE FROM "${db.schema}".jobs WHERE id = $1`, [c!.id]);
  await db.pool.query(`DELETE FROM "${db.schema}".execution_key_heads WHERE execution_key = 'o'`);
  t.deepEqual(await claim(store), []);
  await store.rescueExpired();
  await store.rescueExpired();
  const [after] = await claim(store);
  t.is(after?.id, d!.id);
});

withStore('enqueues racing completions on one key never strand a job: every one runs once, in order', async (t, { store, db }) => {
  const others = await Promise.all([1, 2].map(() => JobStore.open({ postgres: db.url, schema: db.schema })));
  const TOTAL = 300;
  const ran: number[] = [];
  let enqueued = 0;
  try {
    const producer = (async () => {
      // Singles and small batches, from another store (its own connections), while the key turns over.
      for (let i = 0; i < TOTAL; ) {
        const n = Math.min(TOTAL - i, 1 + (i % 3));
        await others[0]!.enqueue(
          Array.from({ length: n }, (_, k) => ({ partition: 'p', type: 'k', executionKey: 'race', payload: { i: i + k } })),
        );
        i += n;
        enqueued = i;
      }
    })();
    const consumers = [store, others[1]!].map(async (s, n) => {
      const node = `node-${n}`;
      for (let idle = 0; idle < 200 && ran.length < TOTAL; ) {
        const jobs = await s.claim({ nodeId: node, partition: 'p', leaseMs: 30_000, queues: [{ queue: 'default', limit: 4 }] });
        if (jobs.length === 0) {
          if (enqueued === TOTAL) idle++;
          await new Promise((r) => setTimeout(r, 2));
          continue;
        }
        idle = 0;
        t.is(jobs.length, 1, 'one job of the key at a time');
        ran.push((jobs[0]!.payload as { i: number }).i);
        await s.complete(node, [{ id: jobs[0]!.id, attempt: jobs[0]!.attempt, result: null }]);
      }
    });
    await Promise.all([producer, ...consumers]);
  } finally {
    await Promise.all(others.map((s) => s.close()));
  }
  t.deepEqual(
    ran,
    Array.from({ length: TOTAL }, (_, i) => i),
    'each job ran once, in enqueue order',
  );
  t.deepEqual(await states(db, 'race'), {});
});

withStore('a settle that waited on an enqueue of its key sees the job that enqueue parked', async (t, { store, db }) => {
  const [a] = await store.enqueue([{ partition: 'p', type: 'k', executionKey: 'w' }]);
  const [held] = await claim(store);
  t.is(held?.id, a!.id);
  let completion: Promise<unknown> | undefined;
  const b = await store.withTransaction(async (tx) => {
    // The enqueue holds the key's head row until it commits; the completion's settle, whose
    // snapshot cannot see the parked job, waits for that row meanwhile.
    const [parked] = await tx.enqueue([{ partition: 'p', type: 'k', executionKey: 'w' }]);
    completion = store.complete('node-a', [{ id: held!.id, attempt: held!.attempt, result: null }]);
    await someoneWaitsOnATransaction(db);
    return parked!;
  });
  await completion;
  const [next] = await claim(store);
  t.is(next?.id, b.id, 'the parked job is the key head once the holder is gone');
});

withStore(
  'a completion whose keys all pass on, one of them held by an enqueue, waits for it and settles that key after',
  async (t, { store, db }) => {
    // Every key of the batch has a next job, so the completion locks no head row before it writes
    // (its update locks them, in key order); the row an enqueue holds makes it wait, and the seq the
    // enqueue bumped hands that key back to be settled with a fresh snapshot.
    const [w1, w2, v1, v2] = await store.enqueue([
      { partition: 'p', type: 'k', executionKey: 'w', payload: { n: 1 } },
      { partition: 'p', type: 'k', executionKey: 'w', payload: { n: 2 } },
      { partition: 'p', type: 'k', executionKey: 'v', payload: { n: 3 } },
      { partition: 'p', type: 'k', executionKey: 'v', payload: { n: 4 } },
    ]);
    const held = await claim(store);
    t.deepEqual(held.map((j) => j.id).sort(), [w1!.id, v1!.id].sort());
    let completion: Promise<unknown> | undefined;
    const w3 = await store.withTransaction(async (tx) => {
      const [parked] = await tx.enqueue([{ partition: 'p', type: 'k', executionKey: 'w', payload: { n: 5 } }]);
      completion = store.complete(
        'node-a',
        held.map((j) => ({ id: j.id, attempt: j.attempt, result: null })),
      );
      await someoneWaitsOnATransaction(db);
      return parked!;
    });
    await completion;
    const ran: string[] = [];
    for (let round = 0; round < 3; round++) {
      const jobs = await claim(store);
      ran.push(...jobs.map((j) => j.id));
      await store.complete(
        'node-a',
        jobs.map((j) => ({ id: j.id, attempt: j.attempt, result: null })),
      );
    }
    t.deepEqual(ran.slice(0, 2).sort(), [w2!.id, v2!.id].sort(), 'each key passed to its next job');
    t.deepEqual(ran.slice(2), [w3.id], 'and the parked job of the held key ran after it');
  },
);

withStore(
  'a completion whose keys all pass on, or all are left empty, locks no head row before writing it; one written both ways locks them all first',
  async (t, { store, db }) => {
    const ops = loadOps(db.schema);
    const headWrites = async (ids: { id: string; attempt: number }[]) => {
      const sorted = [...ids].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>({
          text: `EXPLAIN (ANALYZE, FORMAT JSON) ${ops.complete_batch.text}`,
          values: [
            `{${sorted.map((i) => i.id).join(',')}}`,
            `{${sorted.map((i) => i.attempt).join(',')}}`,
            '{}',
            'node-a',
            null,
            null,
            null,
            null,
            null,
            null,
          ],
        });
        const nodes = flatten(rows[0]!['QUERY PLAN'][0].Plan);
        const locked = nodes.filter((n) => n['Node Type'] === 'LockRows').reduce((sum, n) => sum + n['Actual Rows'], 0);
        const written = (operation: string) =>
          nodes
            .filter((n) => n['Node Type'] === 'ModifyTable' && n.Operation === operation && n['Relation Name'] === 'execution_key_heads')
            .reduce((sum, n) => sum + n['Actual Rows'], 0);
        return { locked, moved: written('Update'), dropped: written('Delete') };
      } finally {
        await client.query('ROLLBACK');
        client.release();
      }
    };
    await store.enqueue(
      ['a', 'b', 'c', 'a', 'b', 'c', 'd', 'e', 'f'].map((key, n) => ({ partition: 'p', type: 'k', executionKey: key, payload: { n } })),
    );
    const heads = (await claim(store)).map((j) => ({ id: j.id, attempt: j.attempt, key: j.executionKey! }));
    const ofKeys = (keys: string) => heads.filter((j) => keys.includes(j.key));
    t.deepEqual(await headWrites(ofKeys('abc')), { locked: 0, moved: 3, dropped: 0 });
    t.deepEqual(await headWrites(ofKeys('def')), { locked: 0, moved: 0, dropped: 3 });
    t.deepEqual(await headWrites(ofKeys('ad')), { locked: 2, moved: 1, dropped: 1 });
  },
);

withStore(
  'a completion passes each key of its batch to the key’s next job, and drops the row of a key left empty',
  async (t, { store, db }) => {
    await store.enqueue([
      { partition: 'p', type: 'k', executionKey: 'x', payload: { n: 1 } },
      { partition: 'p', type: 'k', executionKey: 'x', payload: { n: 2 } },
      { partition: 'p', type: 'k', executionKey: 'y', payload: { n: 3 } },
      { partition: 'p', type: 'k', payload: { n: 4 } },
    ]);
    const first = await claim(store);
    t.deepEqual(first.map((j) => (j.payload as { n: number }).n).sort(), [1, 3, 4], 'one job per key, and the unkeyed one');
    const done = await store.complete(
      'node-a',
      first.map((j) => ({ id: j.id, attempt: j.attempt, result: null })),
    );
    t.is(done.size, 3);
    const { rows: heads } = await db.pool.query<{ execution_key: string }>(
      `SELECT execution_key FROM "${db.schema}".execution_key_heads ORDER BY execution_key`,
    );
    t.deepEqual(
      heads.map((h) => h.execution_key),
      ['x'],
      'y had no job left: its head row is gone',
    );
    t.deepEqual(await states(db, 'x'), { queued: 1 }, 'the second job of x was promoted by the completion');
    const second = await claim(store);
    t.deepEqual(
      second.map((j) => (j.payload as { n: number }).n),
      [2],
    );
    await store.complete('node-a', [{ id: second[0]!.id, attempt: second[0]!.attempt, result: null }]);
    const { rows: left } = await db.pool.query(`SELECT 1 FROM "${db.schema}".execution_key_heads`);
    t.is(left.length, 0);
  },
);

withStore(
  'a completion that takes: each key’s next job becomes the completing node’s running attempt in the same statement where it holds a place and may run it there, else it is queued',
  async (t, { store, db }) => {
    // Key a: next job of the same queue and a type the taker runs. Key b: its next job is of a type
    // it does not run. Key c: its next job is not due yet. Key d: no place held for it. Key e: its
    // next job is of another queue. Key f: no next job.
    await store.registerQueues('node-a', [{ partition: 'p', queue: 'q2', concurrency: 4 }]);
    const later = new Date(Date.now() + 60_000);
    const jobs = await store.enqueue([
      { partition: 'p', type: 'k', executionKey: 'a', payload: { i: 0 } },
      { partition: 'p', type: 'k', executionKey: 'a', payload: { i: 1 } },
      { partition: 'p', type: 'k', executionKey: 'a', payload: { i: 2 } },
      { partition: 'p', type: 'k', executionKey: 'b' },
      { partition: 'p', type: 'other', executionKey: 'b' },
      { partition: 'p', type: 'k', executionKey: 'c' },
      { partition: 'p', type: 'k', executionKey: 'c', runAt: later },
      { partition: 'p', type: 'k', executionKey: 'd' },
      { partition: 'p', type: 'k', executionKey: 'd' },
      { partition: 'p', type: 'k', executionKey: 'e' },
      { partition: 'p', type: 'k', executionKey: 'e', queue: 'q2' },
      { partition: 'p', type: 'k', executionKey: 'f' },
    ]);
    const id = (i: number) => jobs[i]!.id;
    const heads = await claim(store);
    t.deepEqual(heads.map((h) => h.id).sort(), [id(0), id(3), id(5), id(7), id(9), id(11)].sort());
    const take = { leaseMs: 30_000, types: ['k'], continuations: [], ids: new Set(heads.map((h) => h.id).filter((h) => h !== id(7))) };
    const done = await store.complete(
      'node-a',
      heads.map((h) => ({ id: h.id, attempt: h.attempt, result: null })),
      undefined,
      { take },
    );
    t.is(done.size, 6);
    t.deepEqual(
      done.settled.taken.map((j) => ({ id: j.id, attempt: j.attempt, key: j.executionKey, payload: j.payload, partition: j.partition })),
      [{ id: id(1), attempt: 1, key: 'a', payload: { i: 1 }, partition: 'p' }],
    );
    t.deepEqual(done.settled.queues.sort(), ['default', 'q2']);
    const job = (i: number) => store.getJob(id(i));
    t.is((await job(1))?.state, 'running');
    t.is((await job(2))?.state, 'waiting', 'the key’s third job waits behind the taken one');
    t.is((await job(4))?.state, 'queued', 'a type the taker does not run is queued for a node that does');
    t.is((await job(6))?.state, 'scheduled', 'a job not due yet is queued for its time');
    t.is((await job(8))?.state, 'queued', 'no place held: queued');
    t.is((await job(10))?.state, 'queued', 'another queue: queued');
    const { rows } = await db.pool.query<{ locked_by: string; locked_until: Date }>(
      `SELECT locked_by, locked_until FROM "${db.schema}".jobs WHERE id = $1`,
      [id(1)],
    );
    t.is(rows[0]!.locked_by, 'node-a');
    t.true(rows[0]!.locked_until.getTime() > Date.now() + 20_000, 'leased for leaseMs');
    const { rows: f } = await db.pool.query(`SELECT 1 FROM "${db.schema}".execution_key_heads WHERE execution_key = 'f'`);
    t.is(f.length, 0, 'a key with no next job loses its head row');
    // The taken job is the key's running head: nothing else of key a is claimable, and its own
    // completion taking again passes the key on in order.
    t.deepEqual((await claim(store)).map((c) => c.id).sort(), [id(4), id(8)].sort());
    const again = await store.complete('node-a', [{ id: id(1), attempt: 1, result: null }], undefined, {
      take: { ...take, ids: new Set([id(1)]) },
    });
    t.deepEqual(
      again.settled.taken.map((j) => j.id),
      [id(2)],
    );
    // A completion refused (not this node's attempt) takes nothing.
    const refused = await store.complete('node-b', [{ id: id(2), attempt: 1, result: null }], undefined, {
      take: { ...take, ids: new Set([id(2)]) },
    });
    t.is(refused.size, 0);
    t.deepEqual(refused.settled.taken, []);
    t.is((await job(2))?.state, 'running');
  },
);
