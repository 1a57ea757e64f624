// A queue's claims start where the claims before them ended (claim_cursors, migration 0016) and
// scan from the head only when that is due (250 ms after the last scan from it that saw all
// before the cursor) or the part past the cursor comes up short. What these tests hold: a job that
// sorts before the cursor waits no longer than that behind later jobs, a short claim takes it at
// once, and a scan from the head that fills up before the cursor does not count as one that saw all.
import test from 'ava';
import { JobStore } from '@partita/postgres';
import { freshSchema, type TestSchema } from '../../../test/helpers/index.js';

const BOUND_MS = 250;

async function withStore(title: string, fn: (t: import('ava').ExecutionContext, store: JobStore, db: TestSchema) => Promise<void>) {
  test(title, async (t) => {
    const db = await freshSchema('cursor');
    const store = await JobStore.open({ postgres: db.url, schema: db.schema });
    try {
      await store.registerQueues('node-a', [{ partition: 'p', queue: 'default', concurrency: 4 }]);
      await fn(t, store, db);
    } finally {
      await store.close();
      await db.drop();
    }
  });
}

const claim = (store: JobStore, limit: number) =>
  store.claim({ nodeId: 'n', partition: 'p', leaseMs: 30_000, queues: [{ queue: 'default', limit }] });
const enqueue = async (store: JobStore, n: number, priority = 0) =>
  (await store.enqueue(Array.from({ length: n }, () => ({ partition: 'p', type: 'x', priority })))).map((o) => o.id);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

void withStore('a claim that comes up short past the cursor takes what sorts before it at once, first', async (t, store) => {
  await enqueue(store, 15);
  t.is((await claim(store, 10)).length, 10);
  const [urgent] = await enqueue(store, 1, -1);
  // Five are left past the cursor, fewer than asked: the claim looks from the head in the same
  // statement, so an idle queue's enqueue → start latency is what it was.
  const next = await claim(store, 10);
  t.deepEqual(
    next.map((j) => j.id),
    [urgent!, ...next.slice(1).map((j) => j.id)],
    'the job before the cursor comes first in claim order',
  );
  t.is(next.length, 6);
});

void withStore(
  `a job put back behind the cursor is claimed within ${BOUND_MS} ms while claims keep filling up past it`,
  async (t, store) => {
    const all = await enqueue(store, 400);
    const first = await claim(store, 10);
    // Put back before the cursor two ways: a released attempt and a higher-priority enqueue.
    const back = first[0]!;
    t.deepEqual([...(await store.release('n', [{ id: back.id, attempt: back.attempt }])).released], [back.id]);
    const [urgent] = await enqueue(store, 1, -1);
    const putAt = performance.now();
    const seen = new Set(first.slice(1).map((j) => j.id));
    let tookMs = -1;
    while (tookMs < 0 && performance.now() - putAt < 5_000) {
      const got = await claim(store, 10);
      t.is(got.length, 10, 'every claim fills up: the queue has plenty past the cursor');
      for (const j of got) {
        t.false(seen.has(j.id), 'no job is claimed twice');
        seen.add(j.id);
      }
      const ids = got.map((j) => j.id);
      if (ids.includes(urgent!)) {
        tookMs = performance.now() - putAt;
        t.deepEqual(ids.slice(0, 2), [urgent!, back.id], 'both put-back jobs, first in claim order');
      } else t.false(ids.includes(back.id), 'the two put back come together, from the same scan from the head');
      await sleep(20);
    }
    t.true(tookMs >= 0, 'the put-back jobs were claimed');
    // The bound plus one claim's round trip and the loop's pause, with room for a loaded machine.
    t.true(tookMs < BOUND_MS + 400, `claimed ${Math.round(tookMs)} ms after being put back`);
    t.log(`put-back jobs claimed ${Math.round(tookMs)} ms after, ${seen.size} jobs claimed meanwhile`);
    // Nothing is left behind: the rest drain, each job once.
    for (let got = await claim(store, 100); got.length > 0; got = await claim(store, 100)) for (const j of got) seen.add(j.id);
    t.is(seen.size, all.length + 1);
  },
);

void withStore('a scan from the head that fills up before the cursor does not count as one that saw all before it', async (t, store) => {
  await enqueue(store, 30);
  const a = await claim(store, 10);
  const b = await claim(store, 10);
  t.is(a.length + b.length, 20);
  // All twenty go back before the cursor (at the twentieth); the next scan from the head is due.
  const released = await store.release(
    'n',
    [...a, ...b].map((j) => ({ id: j.id, attempt: j.attempt })),
  );
  t.is(released.released.size, 20);
  await sleep(BOUND_MS + 50);
  const c = await claim(store, 10);
  t.deepEqual(
    c.map((j) => j.id),
    a.map((j) => j.id),
    'from the head: the first ten again',
  );
  // Had that scan counted as a full one, this claim would start past the cursor (the last ten).
  const d = await claim(store, 10);
  t.deepEqual(
    d.map((j) => j.id),
    b.map((j) => j.id),
    'still from the head: the ten before the cursor',
  );
  t.is((await claim(store, 10)).length, 10, 'then the ten past it');
});
