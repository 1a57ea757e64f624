import test from 'ava';
import { JobStore } from '@partita/postgres';
import { freshSchema } from '../../../test/helpers/index.js';

async function withStores(title: string, fn: (t: import('ava').ExecutionContext, stores: JobStore[], schema: string, pool: import('pg').Pool) => Promise<void>) {
  test(title, async (t) => {
    const db = await freshSchema('rate');
    // Two stores, two pools: takers on separate connections, as two nodes would be.
    const stores = [await JobStore.open({ postgres: db.url, schema: db.schema }), await JobStore.open({ postgres: db.url, schema: db.schema, migrate: false })];
    try {
      await fn(t, stores, db.schema, db.pool);
    } finally {
      for (const s of stores) await s.close();
      await db.drop();
    }
  });
}

const take = (store: JobStore, want: number, limit = 10, periodMs = 60_000) => store.takeRateTokens('p', [{ queue: 'q', want, limit, periodMs }]).then((g) => g.get('q')!);

withStores('a bucket grants at most its limit in the window, says how long until the next token, and takes back unused tokens', async (t, [a]) => {
  const first = await take(a!, 7);
  t.like(first, { granted: 7, tokensLeft: 3, waitMs: 0 });
  const second = await take(a!, 7);
  t.like(second, { granted: 3, tokensLeft: 0 });
  t.true(second.waitMs > 59_000 && second.waitMs <= 60_000, `waits ${second.waitMs} ms for the first grant to leave the window`);
  t.like(await take(a!, 1), { granted: 0, tokensLeft: 0 });
  await a!.returnRateTokens('p', [{ queue: 'q', takenAt: first.takenAt!, tokens: 5 }]);
  t.like(await take(a!, 10), { granted: 5, tokensLeft: 0 });
});

withStores('grants leave the window as it slides: a short period refills', async (t, [a]) => {
  t.like(await take(a!, 5, 5, 200), { granted: 5 });
  t.like(await take(a!, 5, 5, 200), { granted: 0 });
  await new Promise((r) => setTimeout(r, 250));
  t.like(await take(a!, 5, 5, 200), { granted: 5 });
});

withStores('takers racing on two connections never get more than the limit between them', async (t, stores) => {
  const grants = await Promise.all(Array.from({ length: 40 }, (_, i) => take(stores[i % 2]!, 1, 10)));
  t.is(grants.reduce((n, g) => n + g.granted, 0), 10);
});

withStores('idle buckets are pruned; buckets with grants in their window stay', async (t, [a], schema, pool) => {
  await take(a!, 1);
  await a!.takeRateTokens('p', [{ queue: 'old', want: 1, limit: 1, periodMs: 1000 }]);
  await pool.query(`UPDATE "${schema}".rate_buckets SET updated_at = now() - interval '2 minutes' WHERE queue = 'old'`);
  t.is(await a!.pruneRateBuckets(), 1);
  const { rows } = await pool.query(`SELECT queue FROM "${schema}".rate_buckets`);
  t.deepEqual(rows.map((r) => r.queue), ['q']);
});

withStores('claims limited per key racing on two connections start at most the limit of each key, and skip full keys', async (t, stores, schema, pool) => {
  const [a, b] = stores as [JobStore, JobStore];
  await a.registerQueues('n', [{ partition: 'p', queue: 'q', concurrency: 10 }]);
  const job = (customer: { id: string } | undefined) => ({ partition: 'p', queue: 'q', type: 't', payload: customer ? { customer } : {} });
  await a.enqueue([...Array.from({ length: 20 }, () => job({ id: 'A' })), ...Array.from({ length: 20 }, () => job({ id: 'B' })), job(undefined), job(undefined)]);
  const claim = (store: JobStore) =>
    store.claimRateKeyed({ nodeId: 'n', partition: 'p', leaseMs: 30_000, queues: [{ queue: 'q', limit: 4, keyPath: 'customer.id', rateLimit: 3, periodMs: 60_000 }] });
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => claim(i % 2 ? b : a)));
  const started = new Map<string, number>();
  for (const r of results) for (const j of r.jobs) {
    const key = (j.payload as { customer?: { id: string } }).customer?.id ?? '(none)';
    started.set(key, (started.get(key) ?? 0) + 1);
  }
  t.deepEqual(Object.fromEntries(started), { A: 3, B: 3, '(none)': 2 });
  // Every key is full now (or empty): the next claim skips A and B outright and says when A refills.
  const after = await claim(a);
  t.is(after.jobs.length, 0);
  t.is(after.found.get('q'), 0);
  t.is(after.limited.get('q')!.keys, 2);
  t.true(after.limited.get('q')!.waitMs! > 59_000);
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".jobs WHERE state = 'running'`);
  t.is(rows[0].n, 8);
});
