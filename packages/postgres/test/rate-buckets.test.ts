import test from 'ava';
import { JobStore } from '@partita/postgres';
import { freshSchema } from '../../../test/helpers/index.js';

interface Ctx {
  stores: [JobStore, JobStore];
  schema: string;
  pool: import('pg').Pool;
}

function withStores(title: string, fn: (t: import('ava').ExecutionContext, c: Ctx) => Promise<void>) {
  test(title, async (t) => {
    const db = await freshSchema('rate');
    // Two stores, two pools: claims on separate connections, as two nodes make them.
    const stores: [JobStore, JobStore] = [
      await JobStore.open({ postgres: db.url, schema: db.schema }),
      await JobStore.open({ postgres: db.url, schema: db.schema, migrate: false }),
    ];
    try {
      await stores[0].registerQueues(
        'n',
        ['q', 'old'].map((queue) => ({ partition: 'p', queue, concurrency: 10 })),
      );
      await fn(t, { stores, schema: db.schema, pool: db.pool });
    } finally {
      for (const s of stores) await s.close();
      await db.drop();
    }
  });
}

const jobs = (n: number, payload: (i: number) => unknown = () => ({}), queue = 'q') =>
  Array.from({ length: n }, (_, i) => ({ partition: 'p', queue, type: 't', payload: payload(i) }));

/** One claim of queue q, limited as a whole (no keyPath) or per key. */
const claim = (store: JobStore, want: number, rateLimit: number, periodMs: number, keyPath?: string, queue = 'q') =>
  store.claimRateLimited({
    nodeId: 'n',
    partition: 'p',
    leaseMs: 30_000,
    queues: [{ queue, limit: want, rateLimit, periodMs, ...(keyPath ? { keyPath } : {}) }],
  });

withStores(
  'a queue limited as a whole starts at most its limit in the window, and says how long until the next token',
  async (t, { stores: [a] }) => {
    await a.enqueue(jobs(20));
    const first = await claim(a, 7, 10, 60_000);
    t.is(first.jobs.length, 7);
    t.like(first.limited.get('q'), { tokensLeft: 3, limitedKeys: 0, waitMs: null, held: 0 });
    const second = await claim(a, 7, 10, 60_000);
    t.is(second.jobs.length, 3);
    const outcome = second.limited.get('q')!;
    t.like(outcome, { tokensLeft: 0, limitedKeys: 1, held: 4 });
    t.true(outcome.waitMs! > 59_000 && outcome.waitMs! <= 60_000, `waits ${outcome.waitMs} ms for the first grant to leave the window`);
    const third = await claim(a, 7, 10, 60_000);
    t.is(third.jobs.length, 0);
    t.is(third.found.get('q'), 0, 'a full bucket: its jobs are not even candidates');
    t.like(third.limited.get('q'), { tokensLeft: 0, limitedKeys: 1, held: 7 });
  },
);

withStores('grants leave the window as it slides: a short period refills', async (t, { stores: [a] }) => {
  await a.enqueue(jobs(20));
  // A 2 s period: the second claim must come inside it even on a loaded machine (200 ms did not, in CI).
  t.is((await claim(a, 10, 5, 2000)).jobs.length, 5);
  t.is((await claim(a, 10, 5, 2000)).jobs.length, 0);
  await new Promise((r) => setTimeout(r, 2100));
  t.is((await claim(a, 10, 5, 2000)).jobs.length, 5);
});

withStores('a claim that finds no jobs takes no tokens and touches no bucket', async (t, { stores: [a], schema, pool }) => {
  const none = await claim(a, 5, 10, 60_000);
  t.is(none.jobs.length, 0);
  t.like(none.limited.get('q'), { tokensLeft: 10, limitedKeys: 0, waitMs: null });
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".rate_buckets`);
  t.is(rows[0].n, 0);
  // Jobs found but fewer than asked: only their tokens are taken.
  await a.enqueue(jobs(2));
  t.is((await claim(a, 5, 10, 60_000)).jobs.length, 2);
  await a.enqueue(jobs(20));
  t.is((await claim(a, 20, 10, 60_000)).jobs.length, 8);
});

withStores('claims racing on two connections start no more than the limit between them', async (t, { stores }) => {
  await stores[0].enqueue(jobs(40));
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) => claim(stores[i % 2]!, 3, 10, 60_000)));
  t.is(
    results.reduce((n, r) => n + r.jobs.length, 0),
    10,
  );
});

withStores(
  'limited per key: claims racing on two connections start at most the limit of each key, and skip full keys',
  async (t, { stores, schema, pool }) => {
    const [a, b] = stores;
    const customer = (id: string | undefined) => () => (id ? { customer: { id } } : {});
    await a.enqueue([...jobs(20, customer('A')), ...jobs(20, customer('B')), ...jobs(2, customer(undefined))]);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => claim(i % 2 ? b : a, 4, 3, 60_000, 'customer.id')));
    const started = new Map<string, number>();
    for (const r of results) {
      for (const j of r.jobs) {
        const key = (j.payload as { customer?: { id: string } }).customer?.id ?? '(none)';
        started.set(key, (started.get(key) ?? 0) + 1);
      }
    }
    t.deepEqual(Object.fromEntries(started), { A: 3, B: 3, '(none)': 2 });
    // A and B are full now, the jobs with no key all started: the next claim skips A and B outright.
    const after = await claim(a, 4, 3, 60_000, 'customer.id');
    t.is(after.jobs.length, 0);
    t.is(after.found.get('q'), 0);
    t.like(after.limited.get('q'), { limitedKeys: 2, tokensLeft: null, held: 4 });
    // Until the earliest running job's 60 s lease: less the seconds a loaded machine took since those claims.
    t.true(after.limited.get('q')!.waitMs! > 45_000);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".jobs WHERE state = 'running'`);
    t.is(rows[0].n, 8);
  },
);

withStores('limited per key: a full key ahead in claim order does not hold up the keys behind it', async (t, { stores: [a] }) => {
  await a.enqueue(jobs(30, () => ({ customer: 'A' })));
  t.is((await claim(a, 5, 2, 60_000, 'customer')).jobs.length, 2);
  await a.enqueue(jobs(3, () => ({ customer: 'B' })));
  const next = await claim(a, 5, 2, 60_000, 'customer');
  t.deepEqual(
    next.jobs.map((j) => (j.payload as { customer: string }).customer),
    ['B', 'B'],
  );
});

withStores('idle buckets are pruned; buckets with grants in their window stay', async (t, { stores: [a], schema, pool }) => {
  await a.enqueue([...jobs(1), ...jobs(1, () => ({}), 'old')]);
  await claim(a, 1, 10, 60_000);
  await claim(a, 1, 1, 1000, undefined, 'old');
  await pool.query(`UPDATE "${schema}".rate_buckets SET updated_at = now() - interval '2 minutes' WHERE queue = 'old'`);
  t.is(await a.pruneRateBuckets(), 1);
  const { rows } = await pool.query(`SELECT queue FROM "${schema}".rate_buckets`);
  t.deepEqual(
    rows.map((r) => r.queue),
    ['q'],
  );
});
