/**
 * Retry of failed and cancelled jobs, and bulk cancel / retry / delete by filter, against a real
 * node (Postgres and NATS). The clients that retry are separate connections, as a user's would be:
 * engines must hear of retried jobs through the bus, not through the node's own client.
 */
import test, { type ExecutionContext } from 'ava';
import { connect, type Client, type JobEvent } from '@partita/client';
import { DuplicateQueueKeyError, JobCancelledError, JobFailedError, ValidationError } from '@partita/core';
import { defineJob, startNode, type PartitaNode } from '@partita/runtime';
import { freshSchema, natsUrl, tempDataDir, until, type TestSchema } from './helpers/index.js';

interface Env {
  db: TestSchema;
  node: PartitaNode;
  /** A client of its own (Postgres and NATS), not the node's. */
  client: Client;
  connectClient(): Promise<Client>;
  /** Runs per job id of the jobs whose perform counts them. */
  runs: Map<string, number>;
  /** While true, `flaky` fails and `gate` waits until it is aborted. */
  broken: { flaky: boolean; gate: boolean };
}

async function setUp(t: ExecutionContext): Promise<Env> {
  const db = await freshSchema('retry');
  const nats = await natsUrl();
  const cluster = db.schema.replaceAll('_', '-');
  const runs = new Map<string, number>();
  const broken = { flaky: true, gate: true };
  const count = (id: string) => runs.set(id, (runs.get(id) ?? 0) + 1);
  const node = await startNode({
    dataDir: tempDataDir('retry'),
    postgres: db.url,
    schema: db.schema,
    nats,
    cluster,
    // Polling far slower than the assertions' timeouts: retried jobs must start on a wake-up.
    engine: { pollMs: 30_000 },
    partitions: { billing: { queues: { default: { concurrency: 4 }, slow: { concurrency: 2 } } } },
    jobs: [
      defineJob<{ n?: number }>({
        type: 'flaky',
        perform(_p, ctx) {
          count(ctx.id);
          if (broken.flaky) throw new Error(`broken on attempt ${ctx.attempt}`);
          return { attempt: ctx.attempt };
        },
      }),
      defineJob({
        type: 'gate',
        queue: 'slow',
        perform: (_p: unknown, ctx) => {
          count(ctx.id);
          if (!broken.gate) return 'through';
          return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
        },
      }),
      defineJob({ type: 'later', perform: () => 'ran' }),
    ],
  });
  const clients: Client[] = [];
  const connectClient = async () => {
    const c = await connect({ postgres: db.url, schema: db.schema, nats, cluster });
    clients.push(c);
    return c;
  };
  const client = await connectClient();
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await node.stop({ graceMs: 200 }).catch(() => undefined);
    await db.drop();
  });
  return { db, node, client, connectClient, runs, broken };
}

/** Rows of a job in the live table and in history: a job is in exactly one, once. */
async function placesOf(db: TestSchema, id: string): Promise<{ live: number; history: number }> {
  const { rows } = await db.pool.query<{ live: number; history: number }>(
    `SELECT (SELECT count(*)::int FROM "${db.schema}".jobs WHERE id = $1) AS live,
            (SELECT count(*)::int FROM "${db.schema}".jobs_history WHERE id = $1) AS history`,
    [id],
  );
  return rows[0]!;
}

test('a failed job retried runs again with a fresh attempt budget, keeps its errors, and completes', async (t) => {
  const { db, client, runs, broken } = await setUp(t);
  const { id } = await client.enqueue('billing', 'flaky', { n: 1 });
  await t.throwsAsync(client.result(id, { timeoutMs: 15_000 }), { instanceOf: JobFailedError });
  t.like(await client.job(id), { state: 'failed', attempts: 1, maxAttempts: 1 });

  broken.flaky = false;
  const enqueuedEvents: JobEvent[] = [];
  await client.subscribe({ type: 'flaky', kind: 'enqueued' }, (e) => void enqueuedEvents.push(e));
  const started = Date.now();
  t.true(await client.retry(id));
  t.deepEqual(await client.result(id, { timeoutMs: 10_000 }), { attempt: 2 });
  await until('the enqueued event of the retry', async () => enqueuedEvents.length > 0);
  t.like(enqueuedEvents[0], { id, kind: 'enqueued', attempt: 1 });
  // The engines poll every 30 s: only the wake-up the retry sent can have started it this soon.
  t.true(Date.now() - started < 10_000);
  const job = (await client.job(id))!;
  t.like(job, { id, state: 'completed', attempts: 2, maxAttempts: 2, payload: { n: 1 } });
  t.deepEqual(
    job.errors.map((e) => [e.attempt, e.message]),
    [[1, 'broken on attempt 1']],
    "the first run's error is kept",
  );
  t.is(runs.get(id), 2);
  t.deepEqual(await placesOf(db, id), { live: 0, history: 1 });

  t.false(await client.retry(id), 'a completed job is not retried');
  t.false(await client.retry('0192f0c4-0000-7000-8000-000000000000'), 'an unknown id: false');
  t.false(await client.retry('not-a-job-id'));
  const later = await client.enqueue('billing', 'later', null, { delayMs: 3_600_000 });
  t.false(await client.retry(later.id), 'a live job is not retried');
  t.like(await client.job(later.id), { state: 'scheduled' });
  await t.throwsAsync(client.retry(id, { maxAttempts: 0 }), { instanceOf: ValidationError });
});

test('a cancelled job (cancelled while running) retried runs again and completes', async (t) => {
  const { db, client, runs, broken } = await setUp(t);
  const { id } = await client.enqueue('billing', 'gate');
  await until('the gate job runs', async () => (await client.job(id))?.state === 'running');
  t.true(await client.cancel(id));
  await until('the gate job is cancelled', async () => (await client.job(id))?.state === 'cancelled');
  t.like(await client.job(id), { attempts: 1, queue: 'slow' });

  broken.gate = false;
  t.true(await client.retry(id, { maxAttempts: 1 }));
  // Not aborted at its claim by the cancel flag of its earlier run.
  t.is(await client.result(id, { timeoutMs: 10_000 }), 'through');
  t.like(await client.job(id), { state: 'completed', attempts: 2, maxAttempts: 2, queue: 'slow' });
  t.is(runs.get(id), 2);
  t.deepEqual(await placesOf(db, id), { live: 0, history: 1 });
});

test('retries of one job racing from separate clients: exactly one wins, the job runs once more', async (t) => {
  const { db, client, connectClient, runs, broken } = await setUp(t);
  const { ids } = await client.enqueueMany(
    'billing',
    Array.from({ length: 8 }, (_, n) => ({ type: 'flaky', payload: { n } })),
  );
  await until('all failed', async () => (await client.listJobs({ ids, states: ['failed'], limit: 10 })).length === 8);
  broken.flaky = false;
  const others = await Promise.all([connectClient(), connectClient(), connectClient()]);
  for (const id of ids.slice(0, 6)) {
    const wins = await Promise.all([client, ...others].map((c) => c.retry(id)));
    t.is(wins.filter(Boolean).length, 1, `one of four retries of ${id} won`);
  }
  // Bulk retries racing over the same filter share the last two jobs out, once each.
  const [a, b] = await Promise.all([others[0]!.retryMany({ ids: ids.slice(6) }), others[1]!.retryMany({ ids: ids.slice(6) })]);
  t.is(a.count + b.count, 2);
  t.deepEqual([...a.ids, ...b.ids].sort(), ids.slice(6).sort());

  for (const id of ids) t.like(await client.result(id, { timeoutMs: 10_000 }), { attempt: 2 });
  for (const id of ids) {
    t.is(runs.get(id), 2, `job ${id} ran twice: its first run and one retry`);
    t.deepEqual(await placesOf(db, id), { live: 0, history: 1 });
  }
});

test('a retry whose queue key another live job now holds is refused, naming the holder', async (t) => {
  const { client, broken } = await setUp(t);
  const first = await client.enqueue('billing', 'flaky', {}, { queueKey: 'INV-7' });
  await t.throwsAsync(client.result(first.id, { timeoutMs: 15_000 }), { instanceOf: JobFailedError });
  // The key was released when the first job failed: a second job takes it.
  const holder = await client.enqueue('billing', 'flaky', {}, { queueKey: 'INV-7', delayMs: 3_600_000 });

  const err = await t.throwsAsync(client.retry(first.id), { instanceOf: DuplicateQueueKeyError });
  t.is(err!.queueKey, 'INV-7');
  t.is(err!.heldBy, holder.id);
  t.regex(err!.message, new RegExp(`held by job ${holder.id}.*before retrying job ${first.id}`));
  t.like(await client.job(first.id), { state: 'failed' }, 'the refused job stays failed');
  const many = await client.retryMany({ ids: [first.id] });
  t.is(many.count, 0);
  t.deepEqual(many.refused, [{ id: first.id, queueKey: 'INV-7', heldBy: holder.id }]);

  t.true(await client.cancel(holder.id));
  broken.flaky = false;
  t.true(await client.retry(first.id), 'once the holder is gone, the retry goes through');
  t.deepEqual(await client.result(first.id, { timeoutMs: 10_000 }), { attempt: 2 });
});

test('bulk cancel, retry and delete by filter: dry-run counts, limits, batches and what each leaves alone', async (t) => {
  const { client, broken } = await setUp(t);
  // 2,300 scheduled jobs: cancelMany takes them in statements of 1,000.
  const later = await client.enqueueMany(
    'billing',
    Array.from({ length: 2300 }, (_, n) => ({ type: 'later', payload: { n }, delayMs: 3_600_000 })),
  );
  const running = await client.enqueue('billing', 'gate');
  await until('the gate job runs', async () => (await client.job(running.id))?.state === 'running');

  const waiting = t.throwsAsync(client.result(later.ids[0]!, { timeoutMs: 20_000 }), { instanceOf: JobCancelledError });
  const preview = await client.cancelMany({ type: 'later' }, { dryRun: true });
  t.like(preview, { dryRun: true, matching: 2300, count: 1000, limit: 1000, more: true, byState: { scheduled: 2300 } });
  t.deepEqual(preview.ids, []);
  t.is((await client.listJobs({ type: 'later', states: ['scheduled'], limit: 3000 })).length, 2300, 'a dry run changes nothing');

  const first = await client.cancelMany({ type: 'later' }, { limit: 2100 });
  t.like(first, { dryRun: false, matching: 2300, count: 2100, running: 0, more: true });
  t.is(new Set(first.ids).size, 2100);
  const second = await client.cancelMany({ type: 'later' }, { limit: 2100 });
  t.like(second, { matching: 200, count: 200, more: false });
  t.deepEqual([...first.ids, ...second.ids].sort(), [...later.ids].sort());
  await waiting; // a result() waiter hears of the cancel
  t.like(await client.cancelMany({ type: 'later' }), { matching: 0, count: 0 });

  // Running jobs: cancel flags them and says so; delete never touches them.
  t.like(await client.deleteMany({ type: 'gate' }, { dryRun: true }), { matching: 0, runningSkipped: 1 });
  t.like(await client.deleteMany({ type: 'gate' }), { count: 0, runningSkipped: 1 });
  await t.throwsAsync(client.deleteMany({ states: ['running'] }), { instanceOf: ValidationError, message: /cancel running jobs first/ });
  t.like(await client.cancelMany({ type: 'gate' }), { count: 1, running: 1 });
  await until('the gate job is cancelled', async () => (await client.job(running.id))?.state === 'cancelled');
  t.like(await client.cancelMany({ type: 'gate' }), { count: 0 }, 'a job asked to cancel is not counted again');

  // Retry by filter: only failed and cancelled jobs of the type, newest first, up to the limit.
  const flaky = await client.enqueueMany(
    'billing',
    Array.from({ length: 5 }, (_, n) => ({ type: 'flaky', payload: { n } })),
  );
  await until('the flaky jobs failed', async () => (await client.listJobs({ type: 'flaky', states: ['failed'], limit: 10 })).length === 5);
  await t.throwsAsync(client.retryMany({ states: ['completed'] }), {
    instanceOf: ValidationError,
    message: /retry applies to failed and cancelled jobs/,
  });
  t.like(await client.retryMany({ type: 'flaky' }, { dryRun: true, limit: 3 }), {
    matching: 5,
    count: 3,
    more: true,
    byState: { failed: 5 },
  });
  broken.flaky = false;
  const retried = await client.retryMany({ type: 'flaky', states: ['failed'] }, { limit: 3 });
  t.like(retried, { matching: 5, count: 3, more: true });
  t.deepEqual(retried.ids, [...flaky.ids].sort().reverse().slice(0, 3), 'newest first');
  for (const id of retried.ids) t.deepEqual(await client.result(id, { timeoutMs: 10_000 }), { attempt: 2 });
  t.like(await client.retryMany({ type: 'flaky' }), { matching: 2, count: 2, more: false });

  // Delete: finished jobs by state, and live jobs that are not running.
  const queued = await client.enqueue('billing', 'later', null, { delayMs: 3_600_000 });
  t.like(await client.deleteMany({ states: ['cancelled'] }, { dryRun: true }), { matching: 2301, byState: { cancelled: 2301 } });
  t.like(await client.deleteMany({ states: ['cancelled'] }, { limit: 2000 }), { count: 2000, more: true });
  t.like(await client.deleteMany({ states: ['cancelled'] }), { count: 301, more: false });
  const rest = await client.deleteMany({ partition: 'billing' });
  t.like(rest, { byState: { scheduled: 1 }, runningSkipped: 0 });
  t.true(rest.ids.includes(queued.id));
  t.is(await client.job(queued.id), undefined, 'a deleted queued job is gone');
  t.deepEqual(await client.listJobs({ limit: 10 }), [], 'every job is gone');
  await t.throwsAsync(client.cancelMany({}, { limit: 0 }), { instanceOf: ValidationError });
  await t.throwsAsync(client.cancelMany({ before: 'nope' }), { instanceOf: ValidationError });
  await t.throwsAsync(client.retryMany({ states: ['failed', 'broken' as never] }), {
    instanceOf: ValidationError,
    message: /filter\.states\[1\]/,
  });
});
