import test from 'ava';
import { JobStore, migrate, type ClaimedJob, type NewJob } from '@partita/postgres';
import { DuplicateQueueKeyError, UnknownPartitionError, UnknownQueueError, ValidationError, type JobState } from '@partita/core';
import { loadOps } from '../src/sql.js';
import * as ops from '../src/ops.js';
import { freshSchema, type TestSchema } from '../../../test/helpers/index.js';

interface Ctx {
  db: TestSchema;
  store: JobStore;
}

async function setup(): Promise<Ctx> {
  const db = await freshSchema('store');
  const store = await JobStore.open({ postgres: db.url, schema: db.schema });
  await store.registerQueues('node-a', [
    { partition: 'p', queue: 'default', concurrency: 4 },
    { partition: 'p', queue: 'other', concurrency: 4 },
  ]);
  return { db, store };
}
async function teardown({ db, store }: Ctx): Promise<void> {
  await store.close();
  await db.drop();
}
function withStore(title: string, fn: (t: import('ava').ExecutionContext, c: Ctx) => Promise<void>) {
  test(title, async (t) => {
    const c = await setup();
    try {
      await fn(t, c);
    } finally {
      await teardown(c);
    }
  });
}

test('migrations run once when several processes start at once', async (t) => {
  const db = await freshSchema('mig');
  try {
    const results = await Promise.all(Array.from({ length: 5 }, () => migrate(db.pool, db.schema)));
    const applied = results.filter((r) => r.length > 0);
    t.is(applied.length, 1, 'one process applied them, the others found nothing to do');
    const { rows } = await db.pool.query(`SELECT version FROM "${db.schema}".migrations ORDER BY version`);
    t.deepEqual(
      rows.map((r) => r.version),
      applied[0],
    );
    t.deepEqual(
      applied[0],
      [...applied[0]!.keys()].map((i) => i + 1),
      'numbered from 1 without gaps',
    );
  } finally {
    await db.drop();
  }
});

withStore('enqueue, claim and complete move a job to history with its result', async (t, { store, db }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'echo', payload: { n: 1 } });
  t.is((await store.getJob(id))?.state, 'queued');
  const claimed = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 10 }] });
  t.deepEqual(
    claimed.map((c) => [c.id, c.attempt, c.payload]),
    [[id, 1, { n: 1 }]],
  );
  t.is((await store.getJob(id))?.state, 'running');
  const accepted = await store.complete('node-a', [{ id, attempt: 1, result: { ok: true } }]);
  t.true(accepted.has(id));
  const job = await store.getJob(id);
  t.is(job?.state, 'completed');
  t.deepEqual(job?.result, { ok: true });
  t.truthy(job?.finishedAt);
  const live = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".jobs`);
  t.is(live.rows[0].n, 0, 'the hot table holds only live jobs');
});

// complete_plain (`keyless`) has no key work of its own: a keyed job sent through it anyway must
// still hand its key on (its key comes back and is settled by a second statement), and a refused
// attempt must still come back refused.
withStore('a keyless completion of a keyed job still settles its key; a foreign attempt is refused', async (t, { store }) => {
  const first = await store.enqueueOne({ partition: 'p', type: 'x', executionKey: 'ek' });
  const second = await store.enqueueOne({ partition: 'p', type: 'x', executionKey: 'ek' });
  t.is((await store.getJob(second))?.state, 'waiting');
  const [claimed] = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 10 }] });
  t.is(claimed?.id, first);
  t.is((await store.complete('node-b', [{ id: first, attempt: 1, result: null }], undefined, { keyless: true })).size, 0);
  const done = await store.complete('node-a', [{ id: first, attempt: 1, result: null }], undefined, { keyless: true });
  t.true(done.has(first));
  t.deepEqual(done.settled.queues, ['default']);
  t.is((await store.getJob(second))?.state, 'queued');
  const next = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 10 }] });
  t.deepEqual(
    next.map((j) => j.id),
    [second],
  );
});

/** Completion items for these jobs (results 'a', 'b', … in order), each sent the row address beside it. */
const sentAt = (jobs: ClaimedJob[], tids: (string | null | undefined)[]) =>
  jobs.map((j, i) => ({ id: j.id, attempt: j.attempt, result: 'abcdefgh'[i]!, tid: tids[i] ?? null }));

/** Each of these jobs, completed through sentAt's items, holds its own result (and is in `state`, when given). */
async function ownResults(t: import('ava').ExecutionContext, store: JobStore, jobs: ClaimedJob[], state?: JobState): Promise<void> {
  for (const [i, job] of jobs.entries()) {
    const stored = await store.getJob(job.id);
    if (state !== undefined) t.is(stored?.state, state);
    t.is(stored?.result, 'abcdefgh'[i], 'each row got its own result');
  }
}

// complete_plain fetches each row at the address its claim returned, and by id where the row has
// moved since (a progress update writes a new version elsewhere) or the address names another
// row: every job of the batch completes once, at its own attempt, and nothing else.
withStore('a keyless completion finds rows at their claimed address, and by id where they moved', async (t, { store, db }) => {
  await store.enqueue([1, 2, 3, 4, 5].map((n) => ({ partition: 'p', type: 'x', payload: { n } })));
  const claimed = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 10 }] });
  t.is(claimed.length, 5);
  t.true(
    claimed.every((j) => typeof j.tid === 'string' && /^\(\d+,\d+\)$/.test(j.tid)),
    'a claim returns each row address',
  );
  const [a, b, c, d, e] = claimed as [ClaimedJob, ClaimedJob, ClaimedJob, ClaimedJob, ClaimedJob];
  // a moves (a new version elsewhere); b and c are sent each other's address; d is sent the address
  // of e, a running job of the node not in the batch (same attempt), which must stay running.
  await db.pool.query(`UPDATE "${db.schema}".jobs SET progress = '{"p": 1}' WHERE id = $1`, [a.id]);
  const items = sentAt([a, b, c, d], [a.tid, c.tid, b.tid, e.tid]);
  const done = await store.complete('node-a', items, undefined, { keyless: true });
  t.deepEqual([...done].sort(), [a, b, c, d].map((j) => j.id).sort());
  t.is((await store.getJob(e.id))?.state, 'running');
  await ownResults(t, store, [a, b, c, d], 'completed');
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".jobs_history`);
  t.is(rows[0].n, 4, 'one history row each');
  // Again, at the same addresses: nothing is there, nothing is completed twice.
  t.is((await store.complete('node-a', items, undefined, { keyless: true })).size, 0);
});

// complete_batch (keyed jobs, a next job taken into hands) finds its rows as complete_plain does: at
// the address the claim returned, by id where they moved or were sent another's; and a job it takes
// comes back with its own row's address, where its completion then finds it.
withStore(
  'a keyed completion finds rows at their address, by id where they moved; a taken job comes back with its address',
  async (t, { store, db }) => {
    await store.enqueue(
      [1, 2].flatMap((round) =>
        ['k1', 'k2', 'k3', 'k4'].map((k) => ({ partition: 'p', type: 'x', payload: { round, k }, executionKey: k })),
      ),
    );
    const claimed = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 10 }] });
    t.is(claimed.length, 4, "each key's head");
    const [a, b, c, d] = claimed as [ClaimedJob, ClaimedJob, ClaimedJob, ClaimedJob];
    await db.pool.query(`UPDATE "${db.schema}".jobs SET progress = '{"p": 1}' WHERE id = $1`, [a.id]);
    const items = sentAt([a, b, c, d], [a.tid, c.tid, b.tid, d.tid]);
    const take = { leaseMs: 5000, types: null, continuations: null, ids: new Set(items.map((i) => i.id)) };
    const done = await store.complete('node-a', items, undefined, { take });
    t.deepEqual([...done].sort(), [a, b, c, d].map((j) => j.id).sort());
    await ownResults(t, store, [a, b, c, d]);
    const taken = done.settled.taken;
    t.deepEqual(taken.map((j) => j.executionKey).sort(), ['k1', 'k2', 'k3', 'k4'], "each key's next job is taken");
    for (const j of taken) {
      const { rows } = await db.pool.query(`SELECT ctid::text AS tid, state FROM "${db.schema}".jobs WHERE id = $1`, [j.id]);
      t.deepEqual(rows[0], { tid: j.tid, state: 'running' }, 'a taken job comes back with its row address');
    }
    const next = taken.map((j) => ({ id: j.id, attempt: j.attempt, result: null, tid: j.tid }));
    const last = await store.complete('node-a', next, undefined, { take: { ...take, ids: new Set(next.map((i) => i.id)) } });
    t.is(last.size, 4);
    t.deepEqual(last.settled.taken, [], 'nothing is left to take');
    const { rows } = await db.pool.query(
      `SELECT (SELECT count(*)::int FROM "${db.schema}".jobs) AS live, (SELECT count(*)::int FROM "${db.schema}".execution_key_heads) AS heads`,
    );
    t.deepEqual(rows[0], { live: 0, heads: 0 });
    // Again, at the same addresses: nothing is completed twice.
    t.is((await store.complete('node-a', next, undefined, { take })).size, 0);
  },
);

withStore('a completion from a node without the lease is refused', async (t, { store }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'x' });
  await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1 }] });
  t.is((await store.complete('node-b', [{ id, attempt: 1, result: null }])).size, 0);
  t.is((await store.complete('node-a', [{ id, attempt: 2, result: null }])).size, 0, 'wrong attempt is refused too');
  t.is((await store.getJob(id))?.state, 'running');
});

// complete_batch answers with the ids it did not complete only: the accepted set is what was sent
// minus those, so a batch that mixes both must come back split exactly.
withStore('a completion batch mixing held, stale and foreign attempts accepts exactly the held ones', async (t, { store }) => {
  const ids = await store.enqueue(Array.from({ length: 6 }, (_, n) => ({ partition: 'p', type: 'x', payload: { n } })));
  const mine = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 4 }] });
  const theirs = await store.claim({ nodeId: 'node-b', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 2 }] });
  t.is(mine.length + theirs.length, ids.length);
  const [held1, stale, held2, held3] = mine;
  const accepted = await store.complete('node-a', [
    { id: held1!.id, attempt: held1!.attempt, result: null },
    { id: stale!.id, attempt: stale!.attempt + 1, result: null },
    { id: theirs[0]!.id, attempt: theirs[0]!.attempt, result: null },
    { id: held2!.id, attempt: held2!.attempt, result: 2 },
    { id: held3!.id, attempt: held3!.attempt, result: null },
  ]);
  t.deepEqual([...accepted].sort(), [held1!.id, held2!.id, held3!.id].sort());
  t.is(accepted.refused.size, 0);
  t.is((await store.getJob(stale!.id))?.state, 'running');
  t.is((await store.getJob(theirs[0]!.id))?.state, 'running');
  t.is((await store.getJob(held2!.id))?.state, 'completed');
});

// The completion finds each row's attempt by a binary search of the ids it sends sorted: a batch
// in any order, its ids in either case, must still match each job with its own attempt.
withStore(
  'a large completion batch in any order, ids in either case, completes exactly the jobs at their attempt',
  async (t, { store }) => {
    await store.enqueue(Array.from({ length: 300 }, (_, n) => ({ partition: 'p', type: 'x', payload: { n } })));
    const claimed = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 60_000, queues: [{ queue: 'default', limit: 300 }] });
    t.is(claimed.length, 300);
    const shuffled = [...claimed].sort(() => Math.random() - 0.5);
    const stale = new Set(shuffled.filter((_, i) => i % 7 === 0).map((j) => j.id));
    const items = (jobs: typeof claimed, form: (id: string) => string) =>
      jobs.map((j) => ({ id: form(j.id), attempt: stale.has(j.id) ? j.attempt + 1 : j.attempt, result: null }));
    // As claimed, and in upper case: both sent as a binary array, sorted as text.
    await store.complete(
      'node-a',
      items(shuffled.slice(0, 150), (id) => id),
    );
    await store.complete(
      'node-a',
      items(shuffled.slice(150), (id) => id.toUpperCase()),
    );
    for (const j of shuffled) t.is((await store.getJob(j.id))?.state, stale.has(j.id) ? 'running' : 'completed', j.id);
  },
);

withStore('claims respect priority, run_at, queue and limit', async (t, { store }) => {
  const low = await store.enqueueOne({ partition: 'p', type: 'x', priority: 5 });
  const high = await store.enqueueOne({ partition: 'p', type: 'x', priority: -5 });
  const mid = await store.enqueueOne({ partition: 'p', type: 'x', priority: 0 });
  await store.enqueueOne({ partition: 'p', type: 'x', priority: -10, delayMs: 60_000 });
  await store.enqueueOne({ partition: 'p', queue: 'other', type: 'x', priority: -100 });
  const first = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 2 }] });
  t.deepEqual(
    first.map((j) => j.id),
    [high, mid],
  );
  const rest = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 10 }] });
  t.deepEqual(
    rest.map((j) => j.id),
    [low],
    'the scheduled job is not due and the other queue is not asked for',
  );
});

withStore('a claim sends default priority and cancel_requested as NULL and still answers in claim order', async (t, { store, db }) => {
  const late = await store.enqueueOne({ partition: 'p', type: 'x', priority: 5 });
  const plain = await store.enqueueOne({ partition: 'p', type: 'x' });
  const early = await store.enqueueOne({ partition: 'p', type: 'x', priority: -5 });
  const flagged = await store.enqueueOne({ partition: 'p', type: 'x', priority: 1 });
  await db.pool.query(`UPDATE "${db.schema}".jobs SET cancel_requested = true WHERE id = $1`, [flagged]);
  // Ordered by the stored priority, not by the NULL sent for 0: the default-priority job between the others.
  const claimed = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 10 }] });
  t.deepEqual(
    claimed.map((j) => [j.id, j.priority, j.cancelRequested]),
    [
      [early, -5, false],
      [plain, 0, false],
      [flagged, 1, true],
      [late, 5, false],
    ],
  );
  // The statement's own answer: NULL where the column holds its default (no string for the node to parse).
  const other = await store.enqueueOne({ partition: 'p', queue: 'other', type: 'x' });
  const { names, rows } = await ops.claimBatch(ops.loadOps(db.schema), db.pool, ['p', ['other'], [1], 'n', 5000, null, null]);
  const raw = Object.fromEntries(names.map((n, i) => [n, rows[0]![i]]));
  t.like(raw, { id: other, priority: null, cancel_requested: null });
});

withStore('a failed attempt is retried at retryAt, keeps its errors, then fails for good', async (t, { store }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'x', maxAttempts: 2, queueKey: 'k1' });
  await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1 }] });
  const error = { attempt: 1, at: new Date().toISOString(), name: 'Error', message: 'boom', stack: 'Error: boom' };
  t.true((await store.fail('n', [{ id, attempt: 1, error, retryAt: new Date(Date.now() + 60_000) }])).has(id));
  let job = await store.getJob(id);
  t.is(job?.state, 'scheduled');
  t.is(job?.errors[0]?.message, 'boom');
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', queueKey: 'k1' }), {
    instanceOf: DuplicateQueueKeyError,
    message: new RegExp(id),
  });
  await store.pool.query(`UPDATE "${store.schema}".jobs SET run_at = now() WHERE id = $1`, [id]);
  const [again] = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1 }] });
  t.is(again?.attempt, 2);
  t.true((await store.fail('n', [{ id, attempt: 2, error: { ...error, attempt: 2, message: 'boom 2' } }])).has(id));
  job = await store.getJob(id);
  t.is(job?.state, 'failed');
  t.deepEqual(
    job?.errors.map((e) => e.message),
    ['boom', 'boom 2'],
  );
  t.truthy(await store.enqueueOne({ partition: 'p', type: 'x', queueKey: 'k1' }), 'the queue key is free once the job finished');
});

withStore('expired leases are rescued; a job rescued too often fails', async (t, { store }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'x' });
  await store.claim({ nodeId: 'dead', partition: 'p', leaseMs: 1, queues: [{ queue: 'default', limit: 1 }] });
  await new Promise((r) => setTimeout(r, 20));
  const rescued = await store.rescueExpired();
  t.deepEqual(
    rescued.map((r) => [r.id, r.failed]),
    [[id, false]],
  );
  const job = await store.getJob(id);
  t.is(job?.state, 'queued');
  t.true(job?.errors[0]?.rescued);
  t.is((await store.complete('dead', [{ id, attempt: 1, result: 1 }])).size, 0, 'the dead node can no longer complete it');
  for (let i = 0; i < 10; i++) {
    const got = await store.claim({ nodeId: 'dead', partition: 'p', leaseMs: 1, queues: [{ queue: 'default', limit: 1 }] });
    if (got.length === 0) break;
    await new Promise((r) => setTimeout(r, 5));
    await store.rescueExpired();
  }
  t.is((await store.getJob(id))?.state, 'failed');
});

withStore('heartbeat renews leases and reports cancel requests', async (t, { store }) => {
  const [a, b] = await Promise.all([store.enqueueOne({ partition: 'p', type: 'x' }), store.enqueueOne({ partition: 'p', type: 'x' })]);
  await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 50, queues: [{ queue: 'default', limit: 2 }] });
  const cancelled = await store.cancel([a!]);
  t.deepEqual(cancelled, [{ id: a!, partition: 'p', running: true, node: 'n' }]);
  const beat = await store.heartbeat('n', 10_000, [a!, b!]);
  t.deepEqual(beat.renewed.sort(), [a!, b!].sort());
  t.deepEqual(beat.cancelRequested, [a!]);
  await new Promise((r) => setTimeout(r, 80));
  t.deepEqual(await store.rescueExpired(), [], 'renewed leases are not rescued');
  t.deepEqual((await store.heartbeat('other-node', 10_000, [a!, b!])).renewed, [], 'only the holder renews');
});

withStore(
  'heartbeat skips a row another transaction holds (its completion, say) instead of waiting, and still reports it held',
  async (t, { store, db }) => {
    const [a, b] = await Promise.all([store.enqueueOne({ partition: 'p', type: 'x' }), store.enqueueOne({ partition: 'p', type: 'x' })]);
    await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 60_000, queues: [{ queue: 'default', limit: 2 }] });
    const { rows: before } = await store.pool.query(`SELECT id, locked_until FROM "${db.schema}".jobs ORDER BY id`);
    const holder = await store.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${db.schema}".jobs WHERE id = $1 FOR UPDATE`, [a]);
      const started = Date.now();
      const beat = await Promise.race([
        store.heartbeat('n', 120_000, [a!, b!]),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the heartbeat waited for the lock')), 5_000)),
      ]);
      t.true(Date.now() - started < 5_000);
      t.deepEqual(beat.renewed.sort(), [a!, b!].sort(), 'the locked row is still reported held');
      const { rows: after } = await store.pool.query(`SELECT id, locked_until FROM "${db.schema}".jobs ORDER BY id`);
      const until = (rows: { id: string; locked_until: Date }[], id: string) => rows.find((r) => r.id === id)!.locked_until.getTime();
      t.is(until(after, a!), until(before, a!), 'the locked row was not renewed this round');
      t.true(until(after, b!) > until(before, b!), 'the free row was renewed');
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    const again = await store.heartbeat('n', 120_000, [a!, b!]);
    t.deepEqual(again.renewed.sort(), [a!, b!].sort());
  },
);

withStore(
  'heartbeat with renewWithinMs writes only leases ending within it, and reports the fresher ones held',
  async (t, { store, db }) => {
    const [fresh, old] = await Promise.all([
      store.enqueueOne({ partition: 'p', type: 'x' }),
      store.enqueueOne({ partition: 'p', type: 'x' }),
    ]);
    await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 60_000, queues: [{ queue: 'default', limit: 2 }] });
    await store.pool.query(`UPDATE "${db.schema}".jobs SET locked_until = now() + interval '2 seconds' WHERE id = $1`, [old]);
    const read = async () => {
      const { rows } = await store.pool.query(`SELECT id, locked_until, xmin::text AS xmin FROM "${db.schema}".jobs`);
      return new Map(rows.map((r: { id: string; locked_until: Date; xmin: string }) => [r.id, r]));
    };
    const before = await read();
    const beat = await store.heartbeat('n', 60_000, [fresh!, old!], undefined, 30_000);
    t.deepEqual(beat.renewed.sort(), [fresh!, old!].sort(), 'both still held');
    const after = await read();
    t.is(after.get(fresh!)!.xmin, before.get(fresh!)!.xmin, 'the fresh lease (60 s left) was not written');
    t.is(after.get(fresh!)!.locked_until.getTime(), before.get(fresh!)!.locked_until.getTime());
    t.true(after.get(old!)!.locked_until.getTime() > Date.now() + 50_000, 'the lease ending within 30 s was renewed');
    t.deepEqual((await store.heartbeat('other-node', 60_000, [fresh!, old!], undefined, 30_000)).renewed, [], 'only the holder');
  },
);

withStore('released jobs go back to the queue without counting the attempt', async (t, { store }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'x' });
  const [job] = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1 }] });
  t.deepEqual([...(await store.release('other', [{ id, attempt: 1 }])).released], []);
  t.deepEqual([...(await store.release('n', [{ id, attempt: job!.attempt }])).released], [id]);
  const again = await store.getJob(id);
  t.is(again?.state, 'queued');
  t.is(again?.attempts, 0);
});

withStore('a job handed back after a cancel was asked is finished as cancelled, not queued again', async (t, { store }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'x' });
  const [job] = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1 }] });
  t.deepEqual(await store.cancel([id]), [{ id, partition: 'p', running: true, node: 'n' }]);
  const { released, cancelled } = await store.release('n', [{ id, attempt: job!.attempt }]);
  t.deepEqual([[...released], [...cancelled]], [[], [id]]);
  t.is((await store.getJob(id))?.state, 'cancelled');
});

withStore('a claimed job carries every field of its row, and every claimed job has the same keys', async (t, { store }) => {
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const job = { partition: 'p', queue: 'other', type: 'full', payload: { n: [1, 'x'] }, priority: -3, maxAttempts: 4, timeoutMs: 1234 };
  const keyed = await store.enqueueOne({ ...job, queueKey: 'qk', executionKey: 'ek', continuation: 'mark', traceparent: tp });
  const plain = await store.enqueueOne({ partition: 'p', type: 'bare' });
  const { jobs, found } = await store.claimCounted({
    nodeId: 'node-a',
    partition: 'p',
    leaseMs: 5000,
    queues: [
      { queue: 'other', limit: 5 },
      { queue: 'default', limit: 5 },
    ],
  });
  t.deepEqual(jobs, [
    {
      id: keyed,
      ...job,
      attempt: 1,
      queueKey: 'qk',
      executionKey: 'ek',
      cancelRequested: false,
      traceparent: tp,
      continuation: 'mark',
      tid: jobs[0]!.tid,
    },
    {
      id: plain,
      partition: 'p',
      queue: 'default',
      type: 'bare',
      payload: null,
      priority: 0,
      attempt: 1,
      maxAttempts: jobs[1]!.maxAttempts,
      timeoutMs: null,
      queueKey: null,
      executionKey: null,
      cancelRequested: false,
      traceparent: null,
      continuation: null,
      tid: jobs[1]!.tid,
    },
  ]);
  t.true(Number.isInteger(jobs[1]!.maxAttempts) && jobs[1]!.maxAttempts > 0);
  t.true(
    jobs.every((j) => typeof j.tid === 'string'),
    'each claimed job knows its row address',
  );
  t.deepEqual(Object.keys(jobs[0]!), Object.keys(jobs[1]!), 'one shape for every claimed job');
  t.deepEqual(
    [...found],
    [
      ['other', 1],
      ['default', 1],
    ],
  );
});

withStore('a job enqueued straight into a node is its running first attempt, leased; a held queue key refuses it', async (t, { store }) => {
  const { claimed: job } = await store.enqueueHandedOff(
    { partition: 'p', type: 'x', payload: { n: 1 }, queueKey: 'once', maxAttempts: 3 },
    'node-h',
    5000,
  );
  if (!job) return t.fail('stored queued: the queue is not paused');
  t.like(job, {
    partition: 'p',
    queue: 'default',
    type: 'x',
    payload: { n: 1 },
    attempt: 1,
    maxAttempts: 3,
    queueKey: 'once',
    executionKey: null,
    cancelRequested: false,
  });
  t.like(await store.getJob(job.id), { state: 'running', attempts: 1 });
  t.deepEqual((await store.heartbeat('node-h', 5000, [job.id])).renewed, [job.id], 'leased to that node');
  await t.throwsAsync(store.enqueueHandedOff({ partition: 'p', type: 'x', queueKey: 'once' }, 'node-h', 5000), {
    instanceOf: DuplicateQueueKeyError,
  });
  await t.throwsAsync(store.enqueueHandedOff({ partition: 'p', type: 'x', executionKey: 'k' }, 'node-h', 5000), {
    instanceOf: ValidationError,
  });
  t.true((await store.complete('node-h', [{ id: job.id, attempt: 1, result: 2 }])).has(job.id));
});

withStore('cancel of a queued job moves it to history; it never gets claimed', async (t, { store }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'x', queueKey: 'q' });
  t.deepEqual(await store.cancel([id]), [{ id, partition: 'p', running: false, node: null }]);
  t.is((await store.getJob(id))?.state, 'cancelled');
  t.deepEqual(await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 5 }] }), []);
  t.deepEqual(await store.cancel([id]), [], 'cancelling a finished job does nothing');
});

withStore('enqueue many reports which jobs a held queue key refused', async (t, { store }) => {
  const outcomes = await store.enqueue([
    { partition: 'p', type: 'x', queueKey: 'a' },
    { partition: 'p', type: 'x', queueKey: 'a' },
    { partition: 'p', type: 'x', queueKey: 'b' },
    { partition: 'p', type: 'x' },
  ]);
  t.falsy(outcomes[0]!.refused);
  t.deepEqual(outcomes[1]!.refused, { reason: 'queue_key', queueKey: 'a', heldBy: outcomes[0]!.id });
  t.falsy(outcomes[2]!.refused);
  t.falsy(outcomes[3]!.refused);
});

withStore('lookup attributes are found by key, array values by element, across live and history', async (t, { store }) => {
  const a = await store.enqueueOne({ partition: 'p', type: 'x', lookup: { customer: 42, tags: ['red', 'blue'] } });
  const b = await store.enqueueOne({ partition: 'p', type: 'x', lookup: { customer: '42' } });
  await store.enqueueOne({ partition: 'p', type: 'x', lookup: { customer: 7, tags: ['red'] } });
  await store.cancel([b]);
  t.deepEqual(
    (await store.jobsByKey('p', 'customer', 42)).map((j) => j.id),
    [a, b],
  );
  t.deepEqual(
    (await store.jobsByKey('p', 'tags', 'blue')).map((j) => j.id),
    [a],
  );
  t.is((await store.jobsByKey('p', 'tags', 'red')).length, 2);
  t.deepEqual((await store.getJob(a))?.lookup, { customer: 42, tags: ['red', 'blue'] });
  const plan = await store.pool.query(
    `EXPLAIN SELECT id FROM "${store.schema}".jobs WHERE lookup_index @> '{"customer":["42"]}' AND partition = 'p'`,
  );
  await store.pool.query('SET enable_seqscan = off'); // a tiny table would otherwise be scanned; we check the index is usable
  const forced = await store.pool.query(`EXPLAIN SELECT id FROM "${store.schema}".jobs WHERE lookup_index @> '{"customer":["42"]}'`);
  t.regex(forced.rows.map((r) => r['QUERY PLAN']).join('\n'), /jobs_lookup_idx/);
  t.truthy(plan.rows.length);
});

withStore('bad payloads and options are ValidationErrors naming the field', async (t, { store }) => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', payload: cyclic }), {
    instanceOf: ValidationError,
    message: /circular/,
  });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', payload: { n: 10n } }), {
    instanceOf: ValidationError,
    message: /job\.payload\.n.*BigInt/,
  });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', payload: { f: () => 1 } }), {
    instanceOf: ValidationError,
    message: /function/,
  });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', payload: { m: new Map() } }), {
    instanceOf: ValidationError,
    message: /Map/,
  });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', payload: 'x'.repeat(1024 * 1024 + 1) }), {
    instanceOf: ValidationError,
    message: /limit/,
  });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', maxAttempts: 0 }), {
    instanceOf: ValidationError,
    message: /maxAttempts/,
  });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: '' }), { instanceOf: ValidationError, message: /type/ });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', lookup: { k: [{}] as never } }), {
    instanceOf: ValidationError,
    message: /lookup\.k\[0\]/,
  });
  await t.throwsAsync(store.enqueueOne({ partition: 'nope', type: 'x' }), { instanceOf: UnknownPartitionError, message: /known: p/ });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', queue: 'nope', type: 'x' }), { instanceOf: UnknownQueueError });
  const { rows } = await store.pool.query(`SELECT count(*)::int AS n FROM "${store.schema}".jobs`);
  t.is(rows[0].n, 0, 'nothing was half-enqueued');
});

withStore('a job enqueued with an id of its own keeps it; an id that is no UUID is a ValidationError', async (t, { store }) => {
  const id = '01900000-0000-7000-8000-0000000000a1';
  const [outcome] = await store.enqueue([{ partition: 'p', type: 'x', id }]);
  t.is(outcome!.id, id);
  t.is((await store.getJob(id))?.state, 'queued');
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', id: 'job-1' }), { instanceOf: ValidationError, message: /job\.id/ });
  await t.throwsAsync(store.enqueue([{ partition: 'p', type: 'x', id }]), { message: /duplicate key/ });
});

withStore('history retention drops whole old partitions', async (t, { store, db }) => {
  const s = db.schema;
  await db.pool.query(
    `CREATE TABLE "${s}".jobs_history_20200101 PARTITION OF "${s}".jobs_history FOR VALUES FROM ('2020-01-01') TO ('2020-01-02')`,
  );
  const id = '01700000-0000-7000-8000-000000000001';
  await db.pool.query(
    `INSERT INTO "${s}".jobs_history (id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, errors, created_at, finished_at)
     VALUES ($1, 'p', 'default', 'x', 'null', 'completed', 0, '2020-01-01', 1, 1, '[]', '2020-01-01', '2020-01-01 12:00')`,
    [id],
  );
  t.is((await store.getJob(id))?.state, 'completed');
  const recent = await store.enqueueOne({ partition: 'p', type: 'x' });
  await store.cancel([recent]);
  t.deepEqual(await store.pruneHistory(7), ['jobs_history_20200101']);
  t.is(await store.getJob(id), undefined);
  t.is((await store.getJob(recent))?.state, 'cancelled', 'recent history stays');
  t.deepEqual(await store.pruneHistory(7), []);
});

withStore('twelve thousand jobs enqueue in one call (chunked in one transaction) and drain in claimed batches', async (t, { store }) => {
  const outcomes = await store.enqueue(Array.from({ length: 12_000 }, (_, i) => ({ partition: 'p', type: 'x', payload: { i } })));
  t.is(outcomes.length, 12_000);
  let done = 0;
  for (;;) {
    const batch = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1000 }] });
    if (batch.length === 0) break;
    done += (
      await store.complete(
        'n',
        batch.map((j) => ({ id: j.id, attempt: j.attempt, result: null })),
      )
    ).size;
  }
  t.is(done, 12_000);
});

// Strings that need quoting or escaping somewhere on the way in: JSON, array literals, SQL.
const ODD = [
  'NULL',
  'null',
  'a,b',
  '{x}',
  '"quoted"',
  'back\\slash',
  '\\"',
  '\\u0000 is not a NUL',
  'tab\there\nnewline\r',
  '\u0001\u001f',
  'é ü ß',
  '日本語',
  '🎉 emoji 👩‍👩‍👧',
  'e\u0301 combining',
  ' padded ',
  '\u2028\u2029',
  "it's",
  '[1,2]',
  '{"a":1}',
  '$1 %s',
];

withStore('odd strings round-trip exactly: payload, type, queue and execution keys, lookup', async (t, { store, db }) => {
  const outcomes = await store.enqueue(
    ODD.map((s, i) => ({
      partition: 'p',
      type: s,
      payload: { s, all: ODD, keyed: Object.fromEntries(ODD.map((k) => [k, k])), i },
      queueKey: `${s}#${i}`,
      executionKey: s,
      lookup: { 'tag.v': s, list: [s, i] },
    })),
  );
  const ids = outcomes.map((o) => o.id);
  t.true(outcomes.every((o) => !o.refused));
  for (const [i, s] of ODD.entries()) {
    const job = await store.getJob(ids[i]!);
    t.deepEqual(job?.payload, { s, all: ODD, keyed: Object.fromEntries(ODD.map((k) => [k, k])), i });
    t.is(job?.type, s);
    t.is(job?.queueKey, `${s}#${i}`);
    t.is(job?.executionKey, s);
    t.deepEqual(job?.lookup, { 'tag.v': s, list: [s, i] });
    t.deepEqual(
      (await store.jobsByKey('p', 'tag.v', s)).map((j) => j.id),
      [ids[i]],
    );
  }
  const { rows } = await db.pool.query(`SELECT lookup_index FROM "${db.schema}".jobs WHERE id = $1`, [ids[3]]);
  t.deepEqual(rows[0].lookup_index, { 'tag.v': [ODD[3]], list: [ODD[3], '3'] });
});

withStore(
  'results of one completion batch round-trip exactly, odd strings included; nothing returned is JSON null',
  async (t, { store, db }) => {
    const results: unknown[] = [undefined, null, 0, false, '', ...ODD, { all: ODD, nested: { s: ODD[4] } }, ODD, 'tab\tnew\nline'];
    await store.enqueue(results.map((_, i) => ({ partition: 'p', type: 'r', payload: { i } })));
    const claimed = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1000 }] });
    t.is(claimed.length, results.length);
    const byIndex = (j: { payload: unknown }) => (j.payload as { i: number }).i;
    const accepted = await store.complete(
      'node-a',
      claimed.map((j) => ({ id: j.id, attempt: j.attempt, result: results[byIndex(j)] })),
    );
    t.is(accepted.size, results.length, 'all in one statement');
    for (const j of claimed) {
      const expected = results[byIndex(j)];
      t.deepEqual((await store.getJob(j.id))?.result, expected === undefined ? null : expected);
    }
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".jobs_history WHERE result = 'null'::jsonb`);
    t.is(rows[0].n, 2, 'undefined and null are stored as JSON null, not SQL NULL');
  },
);

withStore('partitions and queues named NULL are names, not nulls', async (t, { store }) => {
  await store.registerQueues('node-a', [
    { partition: 'NULL', queue: 'null', concurrency: 1 },
    { partition: 'NULL', queue: 'NULL', concurrency: 1 },
  ]);
  const [a, b] = await store.enqueue([
    { partition: 'NULL', queue: 'null', type: 'x' },
    { partition: 'NULL', queue: 'NULL', type: 'x' },
  ]);
  t.like(await store.getJob(a!.id), { partition: 'NULL', queue: 'null' });
  t.like(await store.getJob(b!.id), { partition: 'NULL', queue: 'NULL' });
});

withStore('every option is stored, and defaults fill what a job leaves out', async (t, { store, db }) => {
  const before = Date.now();
  const runAt = new Date('2031-02-03T04:05:06.789Z');
  const outcomes = await store.enqueue([
    { partition: 'p', type: 'x' },
    { partition: 'p', type: 'x', runAt, priority: -1_000_000, maxAttempts: 1000, timeoutMs: 2_147_483_647 },
    { partition: 'p', queue: 'other', type: 'x', delayMs: 60_000, priority: 7, timeoutMs: 0 },
    { partition: 'p', type: 'x', delayMs: 0, payload: null },
  ]);
  const { rows } = await db.pool.query(
    `SELECT id, queue, payload, priority, run_at, max_attempts, timeout_ms, queue_key, execution_key, lookup, lookup_index, state, attempts
       FROM "${db.schema}".jobs`,
  );
  const row = (i: number) => rows.find((r) => r.id === outcomes[i]!.id);
  const nearly = (d: Date, ms: number) => Math.abs(d.getTime() - ms) < 5000;
  t.like(row(0), {
    queue: 'default',
    payload: null,
    priority: 0,
    max_attempts: 1,
    timeout_ms: null,
    queue_key: null,
    execution_key: null,
    lookup: null,
    lookup_index: null,
    state: 'queued',
    attempts: 0,
  });
  t.true(nearly(row(0).run_at, before));
  t.like(row(1), { priority: -1_000_000, max_attempts: 1000, timeout_ms: 2_147_483_647 });
  t.is(row(1).run_at.toISOString(), runAt.toISOString());
  t.like(row(2), { queue: 'other', priority: 7, timeout_ms: 0 });
  t.true(nearly(row(2).run_at, before + 60_000));
  t.true(nearly(row(3).run_at, before));
});

withStore('a batch mixing keyed and plain jobs refuses only the held keys, wherever they are', async (t, { store, db }) => {
  const held = await store.enqueueOne({ partition: 'p', type: 'x', queueKey: 'held' });
  const outcomes = await store.enqueue([
    { partition: 'p', type: 'x' },
    { partition: 'p', type: 'x', queueKey: 'a' },
    { partition: 'p', type: 'x', queueKey: 'held' },
    { partition: 'p', type: 'x' },
    { partition: 'p', type: 'x', queueKey: 'a' },
    { partition: 'p', type: 'x', queueKey: 'b' },
    { partition: 'p', type: 'x', executionKey: 'e' },
  ]);
  t.deepEqual(
    outcomes.map((o) => o.refused),
    [
      undefined,
      undefined,
      { reason: 'queue_key', queueKey: 'held', heldBy: held },
      undefined,
      { reason: 'queue_key', queueKey: 'a', heldBy: outcomes[1]!.id },
      undefined,
      undefined,
    ],
  );
  const { rows } = await db.pool.query(`SELECT id FROM "${db.schema}".jobs`);
  t.deepEqual(rows.map((r) => r.id).sort(), [held, ...[0, 1, 3, 5, 6].map((i) => outcomes[i]!.id)].sort());
});

withStore('a chunked enqueue refuses a key an earlier chunk of the same call took', async (t, { store }) => {
  const jobs = Array.from({ length: 5002 }, (_, i) => ({ partition: 'p', type: 'x', payload: { i } }) as NewJob);
  jobs[0]!.queueKey = 'k';
  jobs[5001]!.queueKey = 'k';
  jobs[5000]!.lookup = { only: 'late' };
  const outcomes = await store.enqueue(jobs);
  t.deepEqual(outcomes[5001]!.refused, { reason: 'queue_key', queueKey: 'k', heldBy: outcomes[0]!.id });
  t.is(outcomes.filter((o) => o.refused).length, 1);
  t.deepEqual(
    (await store.jobsByKey('p', 'only', 'late')).map((j) => j.id),
    [outcomes[5000]!.id],
  );
  t.is(await store.getJob(outcomes[5001]!.id), undefined);
  t.deepEqual((await store.getJob(outcomes[4999]!.id))?.payload, { i: 4999 });
});

withStore('jobs are read like plain objects whatever they are built from', async (t, { store }) => {
  class Job {
    get partition() {
      return 'p';
    }
    get type() {
      return 'from-a-getter';
    }
    readonly priority = 2;
  }
  const parsed = JSON.parse('{"partition":"p","type":"parsed","__proto__":{"priority":5}}') as NewJob;
  const inherited = Object.assign(Object.create({ partition: 'p', type: 'inherited', priority: 3 }) as NewJob, { payload: 1 });
  const spread = Array.from({ length: 50 }, (_, i) => ({ ...{ type: 'spread', payload: { i } }, partition: 'p', priority: i }));
  const outcomes = await store.enqueue([parsed, inherited, new Job() as unknown as NewJob, ...spread]);
  t.like(await store.getJob(outcomes[0]!.id), { type: 'parsed', priority: 0 });
  t.like(await store.getJob(outcomes[1]!.id), { type: 'inherited', priority: 3, payload: 1 });
  t.like(await store.getJob(outcomes[2]!.id), { type: 'from-a-getter', priority: 2 });
  t.like(await store.getJob(outcomes[52]!.id), { type: 'spread', priority: 49, payload: { i: 49 } });
});

withStore('validation errors name the job and the field, in a batch and alone', async (t, { store }) => {
  const ok = { partition: 'p', type: 'x' };
  const fails = async (jobs: unknown[], message: string) => {
    await t.throwsAsync(store.enqueue(jobs as NewJob[]), { instanceOf: ValidationError, message });
  };
  await fails([ok, { ...ok, priority: 1.5 }], 'jobs[1].priority: priority must be an integer (lower runs first)');
  await fails(
    [ok, ok, { ...ok, payload: { a: [10n] } }],
    'jobs[2].payload.a[0]: is a BigInt, which JSON cannot represent; convert it to a string',
  );
  await fails([{ ...ok, queue: 'a b' }], 'job.queue: queue must be 1-64 letters, digits, _ or -');
  await fails([{ ...ok, runAt: new Date(), delayMs: 5 }, ok], 'jobs[0]: give runAt or delayMs, not both');
  await fails([ok, null], 'jobs[1]: must be an object');
  await fails([ok, { ...ok, executionKey: '' }], 'jobs[1].executionKey: executionKey must be a non-empty string of at most 500 characters');
  await fails([{ ...ok, lookup: { k: [true] } }], 'job.lookup.k[0]: must be a string, a finite number or an array of those');
  await fails(
    [ok, { ...ok, payload: 'x'.repeat(1024 * 1024 - 1) }],
    'jobs[1].payload: is 1048577 bytes of JSON, over the 1048576-byte limit; store large data elsewhere and enqueue a reference, or raise limits.payloadBytes',
  );
  t.truthy(await store.enqueueOne({ ...ok, payload: 'x'.repeat(1024 * 1024 - 2) }), 'exactly 1 MiB of JSON is allowed');
});

withStore(
  'an execution key admits one running job: claims racing from several nodes never run two jobs of a key, and none fails',
  async (t, { store, db }) => {
    const KEYS = 8;
    await store.enqueue(
      Array.from({ length: 400 }, (_, i) => ({ partition: 'p', type: 'k', executionKey: `k${i % KEYS}`, payload: { i } })),
    );
    // Four nodes, each with its own store (own connections), claiming and completing side by side.
    const others = await Promise.all([1, 2, 3].map(() => JobStore.open({ postgres: db.url, schema: db.schema })));
    const stores = [store, ...others];
    let done = 0;
    let worst = 0;
    try {
      await Promise.all(
        stores.map(async (s, n) => {
          const node = `node-${n}`;
          for (let idle = 0; idle < 20 && done < 400; ) {
            const jobs = await s.claim({ nodeId: node, partition: 'p', leaseMs: 30_000, queues: [{ queue: 'default', limit: 16 }] });
            const keys = jobs.map((j) => j.executionKey);
            t.is(new Set(keys).size, keys.length, 'one job per key per claim');
            const { rows } = await db.pool.query(
              `SELECT max(n)::int AS worst FROM (SELECT count(*) AS n FROM "${db.schema}".jobs WHERE state = 'running' GROUP BY execution_key) c`,
            );
            worst = Math.max(worst, rows[0].worst ?? 0);
            if (jobs.length === 0) {
              idle++;
              await new Promise((r) => setTimeout(r, 5));
              continue;
            }
            idle = 0;
            // A deadlock with a claim racing on the key's index rejects the batch, which the caller
            // writes again (the engine's writer does the same).
            const complete = (): ReturnType<typeof s.complete> =>
              s
                .complete(
                  node,
                  jobs.map((j) => ({ id: j.id, attempt: j.attempt, result: null })),
                )
                .catch((err: { code?: string }) => (err?.code === '40P01' ? complete() : Promise.reject(err)));
            const accepted = await complete();
            done += accepted.size;
          }
        }),
      );
    } finally {
      await Promise.all(others.map((s) => s.close()));
    }
    t.is(done, 400, 'every job ran once');
    t.is(worst, 1, 'never two running jobs under one key');
    // The rule is Postgres's own: a second running job of a key is refused outright.
    const [a, b] = await store.enqueue([
      { partition: 'p', type: 'k', executionKey: 'solo' },
      { partition: 'p', type: 'k', executionKey: 'solo' },
    ]);
    await db.pool.query(`UPDATE "${db.schema}".jobs SET state = 'running' WHERE id = $1`, [a!.id]);
    await t.throwsAsync(db.pool.query(`UPDATE "${db.schema}".jobs SET state = 'running' WHERE id = $1`, [b!.id]), {
      message: /jobs_running_key_idx/,
    });
  },
);

withStore('one claim takes at most 512 execution keys, in claim order, and reports the rest as found', async (t, { store }) => {
  // 1,100 keyed jobs with distinct keys, and plain jobs after them: each key costs the claim a lock
  // in the server's shared lock table, so a claim stops at 512 keys and the next one goes on.
  await store.enqueue(
    Array.from({ length: 1100 }, (_, i) => ({ partition: 'p', type: 'k', executionKey: `key-${i}`, priority: i, payload: { i } })),
  );
  await store.enqueue(Array.from({ length: 10 }, (_, i) => ({ partition: 'p', type: 'plain', priority: 2000 + i })));
  const claim = () =>
    store.claimCounted({ nodeId: 'node-a', partition: 'p', leaseMs: 30_000, queues: [{ queue: 'default', limit: 2000 }] });
  const first = await claim();
  t.is(first.jobs.length, 512 + 10, '512 keyed jobs and every plain one');
  t.deepEqual(
    first.jobs.filter((j) => j.executionKey).map((j) => (j.payload as { i: number }).i),
    Array.from({ length: 512 }, (_, i) => i),
    'the first keys in claim order',
  );
  t.is(first.found.get('default'), 1110, 'the claim saw more than it took, so the engine claims again');
  const second = await claim();
  t.is(second.jobs.length, 512);
  const third = await claim();
  t.is(third.jobs.length, 1100 - 1024);
  t.is((await claim()).jobs.length, 0);
});

withStore(
  'a claim that meets a hold on its key committed mid-claim retries and skips the key instead of failing',
  async (t, { store, db }) => {
    const [first, second, free] = await store.enqueue([
      { partition: 'p', type: 'k', executionKey: 'raced' },
      { partition: 'p', type: 'k', executionKey: 'raced' },
      { partition: 'p', type: 'k', executionKey: 'other' },
    ]);
    // Another node's claim of the first job, not committed yet: invisible to the claim's read, and
    // not holding the key's try-lock (as a claim that committed just after this one read would be).
    const other = await db.pool.connect();
    try {
      await other.query('BEGIN');
      await other.query(
        `UPDATE "${db.schema}".jobs SET state = 'running', locked_by = 'node-b', locked_until = now() + interval '1 minute' WHERE id = $1`,
        [first!.id],
      );
      const claim = store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 10 }] });
      // The claim reads the key as free, takes the second job and waits on the first one's index entry.
      await new Promise((r) => setTimeout(r, 200));
      await other.query('COMMIT');
      const claimed = await claim;
      t.deepEqual(
        claimed.map((j) => j.id),
        [free!.id],
        'the retry skipped the held key',
      );
      t.is((await store.getJob(second!.id))?.state, 'waiting');
    } finally {
      other.release();
    }
  },
);

// complete_batch writes the history row out column by column (measured faster than history_row,
// see its header); every other op that moves a job to history uses history_row. This keeps the one
// copy from drifting: a column added to jobs_history and history_row but not to complete_batch
// fails here, as does any difference in the values the two write for the same finished job.
// complete_plain (the keyless completion) writes the same list again: held the same way.
for (const keyless of [false, true]) {
  const op = keyless ? 'complete_plain' : 'complete_batch';
  withStore(
    `a completion (${op}) writes the history row history_row writes for the same job, column for column`,
    async (t, { store, db }) => {
      const s = `"${db.schema}"`;
      const { rows: columns } = await db.pool.query<{ name: string }>(
        `SELECT attname AS name FROM pg_attribute WHERE attrelid = '${s}.jobs_history'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      );
      const listed = /INSERT INTO "[^"]+"\.jobs_history\s*\(([^)]*)\)/
        .exec(loadOps(db.schema)[op].text)?.[1]
        ?.split(',')
        .map((c) => c.trim());
      t.deepEqual(
        listed,
        columns.map((c) => c.name).filter((c) => c !== 'finished_at'),
        `${op} lists every history column but finished_at (its default)`,
      );

      await store.enqueue([
        { partition: 'p', type: 'r', payload: { n: 1 }, queueKey: 'qk', executionKey: 'ek', lookup: { tag: 'x' }, priority: 3 },
      ]);
      const [job] = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1 }] });
      await db.pool.query(`UPDATE ${s}.jobs SET progress = '{"p": 1}', errors = '[{"attempt": 0}]' WHERE id = $1`, [job!.id]);
      const { rows: expected } = await db.pool.query(
        `SELECT h.* FROM ${s}.jobs j, LATERAL ${s}.history_row(j, 'completed', '{"ok": true}', j.errors) h WHERE j.id = $1`,
        [job!.id],
      );
      // The job holds a key: sent as keyless anyway, complete_plain completes it and its key is settled after.
      await store.complete('node-a', [{ id: job!.id, attempt: job!.attempt, result: { ok: true } }], undefined, { keyless });
      const { rows: written } = await db.pool.query(`SELECT * FROM ${s}.jobs_history WHERE id = $1`, [job!.id]);
      const withoutFinishedAt = ({ finished_at: _, ...row }: Record<string, unknown>) => row;
      t.deepEqual(withoutFinishedAt(written[0]), withoutFinishedAt(expected[0]));
    },
  );
}
