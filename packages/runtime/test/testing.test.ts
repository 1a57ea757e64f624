import test from 'ava';
import pg from 'pg';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { defineJob } from '@partita/runtime';
import { drain, runJob, testNode, type JobOutcome } from '@partita/runtime/testing';
import { connect, type Client } from '@partita/client';
import { JobCancelledError, TimeoutError, UnstorableResultError, ValidationError } from '@partita/core';
import { postgresUrl } from '../../../test/helpers/index.js';
import { clientStore } from '@partita/client/internal';

// ── runJob ────────────────────────────────────────────────────────────────────────────────

test('runJob runs perform with a real JobContext: result, progress and logs come back', async (t) => {
  const invoice = defineJob<{ customer: number; lines: { amount: number }[]; at: Date }, { total: number; at: string; who: string }>({
    type: 'invoice.total',
    queue: 'billing',
    async perform(payload, ctx) {
      ctx.progress({ step: 'summing', of: payload.lines.length });
      ctx.logger.info({ customer: payload.customer }, 'summing lines');
      const total = payload.lines.reduce((sum, l) => sum + l.amount, 0);
      ctx.progress({ step: 'done' });
      return { total, at: payload.at as unknown as string, who: `${ctx.partition}/${ctx.queue}/${ctx.attempt}/${ctx.id}` };
    },
  });
  const at = new Date('2026-01-02T03:04:05.000Z');
  const out = await runJob(
    invoice,
    { customer: 42, lines: [{ amount: 3 }, { amount: 4 }], at },
    { partition: 'eu', id: '018f0000-0000-7000-8000-000000000001' },
  );
  t.true(out.ok);
  t.deepEqual(
    out.result,
    { total: 7, at: '2026-01-02T03:04:05.000Z', who: 'eu/billing/1/018f0000-0000-7000-8000-000000000001' },
    'the payload arrived as JSON (the Date as its string), like through Postgres',
  );
  t.deepEqual(out.progress, [{ step: 'summing', of: 2 }, { step: 'done' }]);
  const line = out.logs.find((l) => l.msg === 'summing lines');
  t.like(line, {
    level: 'info',
    customer: 42,
    jobId: '018f0000-0000-7000-8000-000000000001',
    type: 'invoice.total',
    attempt: 1,
    partition: 'eu',
  });
});

test('runJob reports a failure, and the attempt number given', async (t) => {
  const flaky = defineJob({
    type: 'flaky',
    perform(_p, ctx) {
      if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} failed`);
      return 'third time lucky';
    },
  });
  const first = await runJob(flaky, null);
  t.false(first.ok);
  t.is((first.error as Error).message, 'attempt 1 failed');
  t.is(first.result, undefined);
  t.true(
    first.logs.some((l) => l.level === 'debug' && l.msg === 'attempt failed'),
    'the worker’s own log lines are kept too',
  );
  t.deepEqual(await runJob(flaky, null, { attempt: 3 }), { ok: true, result: 'third time lucky', progress: [], logs: [] });
});

test('runJob times out as a node does: the signal fires with the TimeoutError and the attempt fails', async (t) => {
  let seen: unknown;
  const slow = defineJob({
    type: 'slow',
    timeoutMs: 50,
    perform: (_p, ctx) =>
      new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          seen = ctx.signal.reason;
          resolve('too late');
        });
      }),
  });
  const started = Date.now();
  const out = await runJob(slow, {});
  t.false(out.ok);
  t.true(out.error instanceof TimeoutError);
  t.is(seen, out.error, 'perform heard the same reason through ctx.signal');
  t.true(Date.now() - started < 2000);
  // A perform that ignores its signal loses all the same, at the timeout.
  const deaf = defineJob({ type: 'deaf', perform: () => new Promise(() => undefined) });
  const out2 = await runJob(deaf, {}, { timeoutMs: 30 });
  t.true(out2.error instanceof TimeoutError);
});

test('runJob aborts through the signal given, with its reason', async (t) => {
  const waits = defineJob({
    type: 'waits',
    perform: (_p, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
  });
  const controller = new AbortController();
  setTimeout(() => controller.abort(new JobCancelledError('x')), 20);
  const out = await runJob(waits, {}, { signal: controller.signal });
  t.false(out.ok);
  t.true(out.error instanceof JobCancelledError);
  const already = await runJob(waits, {}, { signal: AbortSignal.abort(new Error('gone')) });
  t.is((already.error as Error).message, 'gone');
});

test('runJob refuses what Postgres would refuse: a payload or a result that is not JSON', async (t) => {
  const nan = defineJob({ type: 'nan', perform: (p: { n: number }) => ({ total: p.n * Number('x') }) });
  const out = await runJob(nan, { n: 1 });
  t.false(out.ok);
  t.true(out.error instanceof UnstorableResultError);
  t.regex((out.error as Error).message, /result\.total/);
  await t.throwsAsync(runJob(nan, { n: Number.NaN }), { instanceOf: ValidationError, message: /payload\.n/ });
});

// ── drain and testNode ───────────────────────────────────────────────────────────────────

test('testNode + drain: everything queued runs, follow-ups and retries included; each drain reports the jobs since the last', async (t) => {
  let client!: Client;
  let flakyRuns = 0;
  const jobs = [
    defineJob<{ order: string }>({
      type: 'order.place',
      async perform(p) {
        await client.enqueue('default', 'email.send', { to: `buyer of ${p.order}` });
        return { placed: p.order };
      },
    }),
    defineJob({ type: 'email.send', queue: 'mail', perform: (p: { to: string }) => `sent to ${p.to}` }),
    defineJob({
      type: 'flaky',
      maxAttempts: 3,
      perform: () => {
        if (++flakyRuns < 3) throw new Error(`flaky run ${flakyRuns}`);
        return 'ok at last';
      },
    }),
    defineJob({ type: 'doomed', perform: () => Promise.reject(new Error('always')) }),
  ];
  const tn = await testNode({ jobs, postgres: await postgresUrl() });
  client = tn.client;
  try {
    t.regex(tn.schema, /^partita_test_/);
    const { id: placed } = await tn.client.enqueue(tn.partition, 'order.place', { order: 'A-1' });
    const { id: flaky } = await tn.client.enqueue(tn.partition, 'flaky', null);
    const { id: doomed } = await tn.client.enqueue(tn.partition, 'doomed', null);
    const { id: later } = await tn.client.enqueue(tn.partition, 'email.send', { to: 'tomorrow' }, { delayMs: 86_400_000 });
    const outcomes = await tn.drain();
    const byType = (type: string) => outcomes.filter((o) => o.type === type);
    t.is(outcomes.length, 5);
    t.like(
      outcomes.find((o) => o.id === placed),
      { state: 'completed', result: { placed: 'A-1' }, queue: 'default' },
    );
    const emails = byType('email.send');
    t.like(
      emails.find((o) => o.state === 'completed'),
      { result: 'sent to buyer of A-1', queue: 'mail' },
      'the follow-up the job enqueued ran too',
    );
    t.like(
      outcomes.find((o) => o.id === flaky),
      { state: 'completed', attempts: 3, result: 'ok at last' },
      'retries were waited for',
    );
    t.is(outcomes.find((o) => o.id === flaky)!.errors.length, 2);
    const failed = outcomes.find((o) => o.id === doomed)!;
    t.like(failed, { state: 'failed', attempts: 1 });
    t.is(failed.error?.message, 'always');
    t.like(
      outcomes.find((o) => o.id === later),
      { state: 'scheduled' },
      'a job for later is reported, not waited for',
    );
    t.deepEqual(
      outcomes.map((o) => o.id),
      [...outcomes.map((o) => o.id)].sort(),
      'oldest first',
    );

    // The next drain reports only what was enqueued since (and the job still scheduled).
    const { id: second } = await tn.client.enqueue(tn.partition, 'email.send', { to: 'b' });
    const next = await tn.drain();
    t.deepEqual(
      next.map((o) => [o.id, o.state]).sort(),
      [
        [second, 'completed'],
        [later, 'scheduled'],
      ].sort(),
    );
    t.deepEqual(await tn.drain(), [{ ...next.find((o) => o.id === later)! }], 'nothing new: only the job still scheduled');

    // Scoped to a queue.
    const { id: inMail } = await tn.client.enqueue(tn.partition, 'email.send', { to: 'c' });
    await tn.client.enqueue(tn.partition, 'order.place', { order: 'B-2' });
    const mailOnly = await tn.drain({ queue: 'mail', since: new Date(Date.now() - 1000) });
    t.true(mailOnly.every((o: JobOutcome) => o.queue === 'mail'));
    t.true(mailOnly.some((o) => o.id === inMail && o.state === 'completed'));
  } finally {
    await tn.stop();
  }
  // stop() dropped the schema.
  const check = new pg.Client({ connectionString: await postgresUrl() });
  await check.connect();
  try {
    const { rows } = await check.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [tn.schema]);
    t.is(rows.length, 0, 'the test schema was dropped');
  } finally {
    await check.end();
  }
});

test('drain rejects with TimeoutError naming what is still pending; drain works from a bare client too', async (t) => {
  const tn = await testNode({ jobs: [defineJob({ type: 'noop', perform: () => 'done' })], postgres: await postgresUrl() });
  try {
    await tn.client.pause(tn.partition, 'default');
    const { id } = await tn.client.enqueue(tn.partition, 'noop', null);
    const err = await t.throwsAsync(tn.drain({ timeoutMs: 300 }), { instanceOf: TimeoutError });
    t.true(err!.message.includes(id), 'the message names the pending job');
    await tn.client.resume(tn.partition, 'default');
    const client = await connect({ postgres: await postgresUrl(), schema: tn.schema });
    try {
      const outcomes = await drain(client, { partition: tn.partition });
      t.deepEqual(
        outcomes.map((o) => [o.id, o.state, o.result]),
        [[id, 'completed', 'done']],
      );
    } finally {
      await client.close();
    }
  } finally {
    await tn.stop();
  }
});

test('testNode without a Postgres to use starts the embedded one in a temporary data dir, and stop() removes it', async (t) => {
  const saved = { PARTITA_TEST_POSTGRES_URL: process.env.PARTITA_TEST_POSTGRES_URL, DATABASE_URL: process.env.DATABASE_URL };
  delete process.env.PARTITA_TEST_POSTGRES_URL;
  delete process.env.DATABASE_URL;
  let tn: Awaited<ReturnType<typeof testNode>>;
  try {
    tn = await testNode({ jobs: [defineJob({ type: 'inc', perform: (n: number) => n + 1 })] });
  } finally {
    for (const [key, value] of Object.entries(saved)) if (value !== undefined) process.env[key] = value;
  }
  let dataDir: string | undefined;
  try {
    const { rows } = await clientStore(tn.client).pool.query<{ data_directory: string }>('SHOW data_directory');
    dataDir = rows[0]!.data_directory;
    t.true(dataDir.startsWith(tmpdir()), `the embedded server's data lives in a temporary dir (${dataDir})`);
    const { id } = await tn.client.enqueue(tn.partition, 'inc', 41);
    t.like(await tn.drain(), [{ id, state: 'completed', result: 42 }]);
  } finally {
    await tn.stop();
  }
  t.false(existsSync(dataDir!), 'stop() removed the data dir');
});
