import test from 'ava';
import { defineJob } from '@partita/runtime';
import { JobFailedError } from '@partita/core';
import { cluster, sleep, until, type Cluster } from './helpers.js';
import { capturingLogger } from '../../../test/helpers/index.js';

// A result the database cannot hold used to fail its whole completion batch, which was retried for
// ever: every later outcome of the partition waited behind it and stop never finished. These run a
// real node on real Postgres and check that only the bad job pays.

const oneQueue = (concurrency = 8) => ({ p: { queues: { default: { concurrency } } } });
/** Outcomes gather for a while, so the bad jobs share their flush with good ones. */
const engine = { pollMs: 50, flushMs: 100 };

function circular(): unknown {
  const o: Record<string, unknown> = { items: [{ id: 1 }] };
  (o.items as Record<string, unknown>[])[0]!.owner = o;
  return o;
}

/** Fails the test instead of hanging it when stop does not finish. */
async function stopsWithin(c: Cluster, ms: number): Promise<number> {
  const started = Date.now();
  const stopped = Promise.all(c.nodes.map((n) => n.stop({ graceMs: 500 })));
  const outcome = await Promise.race([stopped.then(() => 'stopped' as const), sleep(ms).then(() => 'hung' as const)]);
  if (outcome === 'hung') throw new Error(`node.stop() did not finish within ${ms} ms`);
  return Date.now() - started;
}

test('a result JSON cannot hold fails only its own job, naming the path; the rest of the flush completes and stop finishes', async (t) => {
  const c = await cluster('unstorable');
  try {
    const results: Record<string, () => unknown> = {
      nan: () => ({ customer: 42, total: NaN }),
      circular,
      bigint: () => ({ lines: [{ amount: 10n }] }),
      map: () => new Map([['a', 1]]),
    };
    const bad = defineJob<{ kind: string }>({ type: 'bad', maxAttempts: 1, perform: (p) => results[p.kind]!() });
    const good = defineJob<{ i: number }>({ type: 'good', perform: (p) => ({ i: p.i, half: p.i / 2 }) });
    const node = await c.start({ partitions: oneQueue(), jobs: [bad, good], engine });
    const jobs = [
      ...Object.keys(results).map((kind) => ({ type: 'bad', payload: { kind } })),
      ...Array.from({ length: 20 }, (_, i) => ({ type: 'good', payload: { i } })),
    ];
    const { ids } = await node.client.enqueueMany('p', jobs);
    const expected: Record<string, RegExp> = {
      nan: /result\.total: is NaN, which JSON cannot represent; use null or a string/,
      circular: /result\.items\[0\]\.owner: contains a circular reference/,
      bigint: /result\.lines\[0\]\.amount: is a BigInt/,
      map: /result: is a Map/,
    };
    const kinds = Object.keys(results);
    for (let i = 0; i < kinds.length; i++) {
      const err = await t.throwsAsync(node.client.result(ids[i]!, { timeoutMs: 10_000 }), { instanceOf: JobFailedError });
      t.regex(err!.message, expected[kinds[i]!]!);
      const job = await node.client.job(ids[i]!);
      t.is(job?.state, 'failed');
      t.is(job?.errors[0]?.name, 'UnstorableResultError');
    }
    for (let i = kinds.length; i < ids.length; i++) {
      const n = i - kinds.length;
      t.deepEqual(await node.client.result(ids[i]!, { timeoutMs: 10_000 }), { i: n, half: n / 2 });
    }
    t.true((await stopsWithin(c, 10_000)) < 5_000, 'graceful stop finishes promptly');
  } finally {
    await c.close();
  }
});

test('an attempt whose result cannot be stored is retried like any failure, and a good result then completes the job', async (t) => {
  const c = await cluster('unstorable_retry');
  try {
    const calls: string[] = [];
    const flaky = defineJob({
      type: 'flaky',
      maxAttempts: 2,
      backoff: { baseMs: 50, maxMs: 100 },
      perform: (_p, ctx) => (ctx.attempt === 1 ? { total: Infinity } : { total: 3 }),
      onError: (err) => void calls.push(`error:${(err as Error).name}`),
      onSuccess: (result) => void calls.push(`success:${JSON.stringify(result)}`),
    });
    const node = await c.start({ partitions: oneQueue(), jobs: [flaky], engine });
    const { id } = await node.client.enqueue('p', 'flaky');
    t.deepEqual(await node.client.result(id, { timeoutMs: 10_000 }), { total: 3 });
    const job = await node.client.job(id);
    t.is(job?.attempts, 2);
    t.deepEqual(
      job?.errors.map((e) => [e.attempt, e.name, e.message]),
      [[1, 'UnstorableResultError', 'result.total: is Infinity, which JSON cannot represent; use null or a string']],
    );
    await until('callbacks', async () => calls.length === 2);
    t.deepEqual(calls, ['error:UnstorableResultError', 'success:{"total":3}']);
    await stopsWithin(c, 10_000);
  } finally {
    await c.close();
  }
});

test('a progress value JSON cannot hold is dropped with a warning naming its path; the job and its later progress go on', async (t) => {
  const c = await cluster('unstorable_progress');
  try {
    const { logger, lines } = capturingLogger('warn');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const reporter = defineJob({
      type: 'reporter',
      async perform(_p, ctx) {
        ctx.progress({ done: 1, rate: NaN });
        await sleep(300); // past a flush: the bad value must not hold the good one back
        ctx.progress({ done: 2 });
        await gate;
        return 'ok';
      },
    });
    const node = await c.start({ partitions: oneQueue(), jobs: [reporter], engine, logger });
    const { id } = await node.client.enqueue('p', 'reporter');
    await until(
      'the good progress value is stored',
      async () => {
        const { rows } = await c.db.pool.query(`SELECT progress FROM "${c.db.schema}".jobs WHERE id = $1`, [id]);
        return rows[0]?.progress?.done === 2;
      },
      10_000,
      50,
    );
    release();
    t.is(await node.client.result(id, { timeoutMs: 10_000 }), 'ok');
    const warning = lines.find((l) => /progress\.rate: is NaN/.test(String(l.err ?? l.msg)));
    t.truthy(warning, `a warning names progress.rate; got ${JSON.stringify(lines.map((l) => l.msg))}`);
    t.is(warning?.jobId, id);
    await stopsWithin(c, 10_000);
  } finally {
    await c.close();
  }
});

test('a row the database refuses at flush fails only that job with a storable error; its batch-mates are recorded', async (t) => {
  const c = await cluster('refused_row');
  try {
    const job = defineJob<{ i: number; poison?: 'result' | 'error' }>({
      type: 'job',
      maxAttempts: 1,
      perform(p) {
        if (p.poison === 'error') throw new Error('a poison error');
        return p.poison === 'result' ? { poison: true } : { i: p.i };
      },
    });
    const node = await c.start({ partitions: oneQueue(), jobs: [job], engine });
    // A check constraint stands in for any row-level refusal (bad JSON, a value too long, …) that
    // the worker's own check cannot foresee. Failures whose error mentions "poison" are refused too,
    // so recording the failure itself must fall back to an error that can be stored.
    await c.db.pool.query(
      `ALTER TABLE "${c.db.schema}".jobs_history ADD CONSTRAINT no_poison CHECK (NOT coalesce(result ? 'poison', false))`,
    );
    await c.db.pool.query(
      `ALTER TABLE "${c.db.schema}".jobs_history ADD CONSTRAINT no_poison_error CHECK (errors::text NOT LIKE '%poison error%')`,
    );
    const { ids } = await node.client.enqueueMany('p', [
      { type: 'job', payload: { i: 0, poison: 'result' } },
      { type: 'job', payload: { i: 1, poison: 'error' } },
      ...Array.from({ length: 10 }, (_, i) => ({ type: 'job', payload: { i: i + 2 } })),
    ]);
    const refusedResult = await t.throwsAsync(node.client.result(ids[0]!, { timeoutMs: 10_000 }), { instanceOf: JobFailedError });
    t.regex(refusedResult!.message, /result: Postgres refused to store it .*no_poison/);
    t.is((await node.client.job(ids[0]!))?.errors[0]?.name, 'UnstorableResultError');
    const refusedError = await t.throwsAsync(node.client.result(ids[1]!, { timeoutMs: 10_000 }), { instanceOf: JobFailedError });
    t.regex(refusedError!.message, /could not be stored/);
    t.notRegex(refusedError!.message, /poison error/);
    for (let i = 2; i < ids.length; i++) t.deepEqual(await node.client.result(ids[i]!, { timeoutMs: 10_000 }), { i });
    t.true((await stopsWithin(c, 10_000)) < 5_000, 'graceful stop finishes promptly');
  } finally {
    await c.close();
  }
});

test('an outcome Postgres refuses however it is recorded is dropped to lease expiry, and stop still finishes', async (t) => {
  const c = await cluster('refused_always');
  try {
    const doomed = defineJob({ type: 'doomed', maxAttempts: 1, perform: () => ({ fine: true }) });
    const good = defineJob<{ i: number }>({ type: 'good', perform: (p) => p.i });
    const { logger, lines } = capturingLogger('warn');
    const node = await c.start({ partitions: oneQueue(), jobs: [doomed, good], engine, logger });
    // No outcome of a 'doomed' job can land in history: its completion is refused, then its failure,
    // then the failure with the stand-in error.
    await c.db.pool.query(`ALTER TABLE "${c.db.schema}".jobs_history ADD CONSTRAINT no_doomed CHECK (type <> 'doomed')`);
    const { ids } = await node.client.enqueueMany('p', [
      { type: 'doomed' },
      ...Array.from({ length: 5 }, (_, i) => ({ type: 'good', payload: { i } })),
    ]);
    for (let i = 1; i < ids.length; i++) t.is(await node.client.result(ids[i]!, { timeoutMs: 10_000 }), i - 1);
    const said = (pattern: RegExp) => lines.filter((l) => l.jobId === ids[0] && pattern.test(l.msg)).length;
    await until(
      'the engine gave up on recording the doomed job',
      async () => said(/even with a plain error; dropping it/) === 1,
      10_000,
      20,
    );
    t.is(said(/result refused by Postgres/), 1);
    t.is(said(/recording it with an error that says so instead/), 1);
    t.true((await stopsWithin(c, 10_000)) < 5_000, 'graceful stop finishes promptly');
    const { rows } = await c.db.pool.query(`SELECT state, locked_by FROM "${c.db.schema}".jobs WHERE id = $1`, [ids[0]]);
    t.is(rows[0]?.state, 'running', 'left to its lease: rescue decides what happens to it next');
  } finally {
    await c.close();
  }
});

test('a batch statement that fails for a while is written again alone: its batch-mates are recorded once, with their callbacks', async (t) => {
  const c = await cluster('partial_flush');
  try {
    const successes: unknown[] = [];
    let running = 0;
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const job = defineJob<{ i: number; fail?: boolean }>({
      type: 'job',
      maxAttempts: 1,
      async perform(p) {
        running++;
        await gate; // all finish together, so their outcomes share one flush
        if (p.fail) throw new Error('expected failure');
        return p.i;
      },
      onSuccess: (result) => void successes.push(result),
    });
    const { logger, lines } = capturingLogger('warn');
    // A short lock timeout turns a row lock held below into a transient failure of the one statement that needs the row.
    const postgres = { connectionString: c.db.url, lock_timeout: 200 };
    const node = await c.start({ partitions: oneQueue(), jobs: [job], engine, logger, postgres } as Parameters<Cluster['start']>[0]);
    const { ids } = await node.client.enqueueMany('p', [
      { type: 'job', payload: { i: 0, fail: true } },
      ...Array.from({ length: 5 }, (_, i) => ({ type: 'job', payload: { i: i + 1 } })),
    ]);
    await until('all six running', async () => running === 6, 10_000, 20);
    const holder = await c.db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${c.db.schema}".jobs WHERE id = $1 FOR UPDATE`, [ids[0]]);
      open();
      await until(
        'recording the failure met the lock',
        async () => lines.some((l) => /recording job outcomes failed/.test(l.msg)),
        10_000,
        20,
      );
      await holder.query('COMMIT');
    } finally {
      holder.release();
    }
    await t.throwsAsync(node.client.result(ids[0]!, { timeoutMs: 10_000 }), { instanceOf: JobFailedError, message: /expected failure/ });
    for (let i = 1; i < ids.length; i++) t.is(await node.client.result(ids[i]!, { timeoutMs: 10_000 }), i);
    await until('onSuccess ran for every completed job', async () => successes.length >= 5, 10_000, 20);
    await sleep(200);
    t.deepEqual([...successes].sort(), [1, 2, 3, 4, 5], 'once each');
    t.deepEqual(
      lines.filter((l) => /completion refused/.test(l.msg)),
      [],
      'no completion was written twice',
    );
    await stopsWithin(c, 10_000);
  } finally {
    await c.close();
  }
});
