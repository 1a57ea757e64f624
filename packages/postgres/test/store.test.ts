import test from 'ava';
import { JobStore, migrate } from '@partita/postgres';
import { DuplicateQueueKeyError, UnknownPartitionError, UnknownQueueError, ValidationError } from '@partita/core';
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
    t.deepEqual(rows.map((r) => r.version), applied[0]);
    t.deepEqual(applied[0], [...applied[0]!.keys()].map((i) => i + 1), 'numbered from 1 without gaps');
  } finally {
    await db.drop();
  }
});

withStore('enqueue, claim and complete move a job to history with its result', async (t, { store, db }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'echo', payload: { n: 1 } });
  t.is((await store.getJob(id))?.state, 'queued');
  const claimed = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 10 }] });
  t.deepEqual(claimed.map((c) => [c.id, c.attempt, c.payload]), [[id, 1, { n: 1 }]]);
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

withStore('a completion from a node without the lease is refused', async (t, { store }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'x' });
  await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1 }] });
  t.is((await store.complete('node-b', [{ id, attempt: 1, result: null }])).size, 0);
  t.is((await store.complete('node-a', [{ id, attempt: 2, result: null }])).size, 0, 'wrong attempt is refused too');
  t.is((await store.getJob(id))?.state, 'running');
});

withStore('claims respect priority, run_at, queue and limit', async (t, { store }) => {
  const low = await store.enqueueOne({ partition: 'p', type: 'x', priority: 5 });
  const high = await store.enqueueOne({ partition: 'p', type: 'x', priority: -5 });
  const mid = await store.enqueueOne({ partition: 'p', type: 'x', priority: 0 });
  await store.enqueueOne({ partition: 'p', type: 'x', priority: -10, delayMs: 60_000 });
  await store.enqueueOne({ partition: 'p', queue: 'other', type: 'x', priority: -100 });
  const first = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 2 }] });
  t.deepEqual(first.map((j) => j.id), [high, mid]);
  const rest = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 10 }] });
  t.deepEqual(rest.map((j) => j.id), [low], 'the scheduled job is not due and the other queue is not asked for');
});

withStore('a failed attempt is retried at retryAt, keeps its errors, then fails for good', async (t, { store }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'x', maxAttempts: 2, queueKey: 'k1' });
  await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1 }] });
  const error = { attempt: 1, at: new Date().toISOString(), name: 'Error', message: 'boom', stack: 'Error: boom' };
  t.true((await store.fail('n', [{ id, attempt: 1, error, retryAt: new Date(Date.now() + 60_000) }])).has(id));
  let job = await store.getJob(id);
  t.is(job?.state, 'scheduled');
  t.is(job?.errors[0]?.message, 'boom');
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', queueKey: 'k1' }), { instanceOf: DuplicateQueueKeyError, message: new RegExp(id) });
  await store.pool.query(`UPDATE "${store.schema}".jobs SET run_at = now() WHERE id = $1`, [id]);
  const [again] = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1 }] });
  t.is(again?.attempt, 2);
  t.true((await store.fail('n', [{ id, attempt: 2, error: { ...error, attempt: 2, message: 'boom 2' } }])).has(id));
  job = await store.getJob(id);
  t.is(job?.state, 'failed');
  t.deepEqual(job?.errors.map((e) => e.message), ['boom', 'boom 2']);
  t.truthy(await store.enqueueOne({ partition: 'p', type: 'x', queueKey: 'k1' }), 'the queue key is free once the job finished');
});

withStore('expired leases are rescued; a job rescued too often fails', async (t, { store }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'x' });
  await store.claim({ nodeId: 'dead', partition: 'p', leaseMs: 1, queues: [{ queue: 'default', limit: 1 }] });
  await new Promise((r) => setTimeout(r, 20));
  const rescued = await store.rescueExpired();
  t.deepEqual(rescued.map((r) => [r.id, r.failed]), [[id, false]]);
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

withStore('released jobs go back to the queue without counting the attempt', async (t, { store }) => {
  const id = await store.enqueueOne({ partition: 'p', type: 'x' });
  const [job] = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 5000, queues: [{ queue: 'default', limit: 1 }] });
  t.deepEqual([...(await store.release('other', [{ id, attempt: 1 }]))], []);
  t.deepEqual([...(await store.release('n', [{ id, attempt: job!.attempt }]))], [id]);
  const again = await store.getJob(id);
  t.is(again?.state, 'queued');
  t.is(again?.attempts, 0);
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
  t.deepEqual((await store.jobsByKey('p', 'customer', 42)).map((j) => j.id), [a, b]);
  t.deepEqual((await store.jobsByKey('p', 'tags', 'blue')).map((j) => j.id), [a]);
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
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', payload: cyclic }), { instanceOf: ValidationError, message: /circular/ });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', payload: { n: 10n } }), { instanceOf: ValidationError, message: /job\.payload\.n.*BigInt/ });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', payload: { f: () => 1 } }), { instanceOf: ValidationError, message: /function/ });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', payload: { m: new Map() } }), { instanceOf: ValidationError, message: /Map/ });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', payload: 'x'.repeat(1024 * 1024 + 1) }), { instanceOf: ValidationError, message: /limit/ });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', maxAttempts: 0 }), { instanceOf: ValidationError, message: /maxAttempts/ });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: '' }), { instanceOf: ValidationError, message: /type/ });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', type: 'x', lookup: { k: [{}] as never } }), { instanceOf: ValidationError, message: /lookup\.k\[0\]/ });
  await t.throwsAsync(store.enqueueOne({ partition: 'nope', type: 'x' }), { instanceOf: UnknownPartitionError, message: /known: p/ });
  await t.throwsAsync(store.enqueueOne({ partition: 'p', queue: 'nope', type: 'x' }), { instanceOf: UnknownQueueError });
  const { rows } = await store.pool.query(`SELECT count(*)::int AS n FROM "${store.schema}".jobs`);
  t.is(rows[0].n, 0, 'nothing was half-enqueued');
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
    done += (await store.complete('n', batch.map((j) => ({ id: j.id, attempt: j.attempt, result: null })))).size;
  }
  t.is(done, 12_000);
});
