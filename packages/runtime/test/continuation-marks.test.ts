import test from 'ava';
import { JobStore } from '@partita/postgres';
import { defineJob, type FinishedJob, type OutcomeContinuation, type PartitaNode } from '@partita/runtime';
import { cluster, sleep, until } from './helpers.js';

// A job marked with a continuation's name (NewJob.continuation) has its outcome written in that
// continuation's transaction whatever its type; unmarked jobs of types without continuations take
// the plain write, even on a node whose plugins have continuations. Real nodes on real Postgres.

const oneQueue = { p: { queues: { default: { concurrency: 16 } } } };
const engine = { pollMs: 50, flushMs: 20 };
const work = defineJob<{ i: number }>({ type: 'work', perform: (p) => ({ i: p.i }) });

/** Outcomes this node wrote with their continuations (partita_continued_outcomes_total). */
async function continuedOutcomes(node: PartitaNode): Promise<number> {
  const metric = node.metrics.registry.getSingleMetric('partita_continued_outcomes_total');
  if (!metric) throw new Error('partita_continued_outcomes_total is not registered');
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

/** A continuation that follows only the jobs marked with its name, recording each it sees. */
function markedOnly(name: string, seen: FinishedJob[]): OutcomeContinuation {
  return {
    name,
    run: async (tx, jobs) => {
      seen.push(...jobs);
      await tx.query('INSERT INTO {{schema}}.seen (job, continuation) SELECT unnest($1::uuid[]), $2', [jobs.map((j) => j.id), name]);
    },
  };
}

test('unmarked jobs take the plain write on a node with a marked-only continuation; marked ones reach it exactly once, in its transaction', async (t) => {
  const c = await cluster('cont_mark');
  try {
    const { db } = c;
    await db.pool.query(`CREATE TABLE "${db.schema}".seen (job uuid NOT NULL, continuation text NOT NULL)`);
    const seen: FinishedJob[] = [];
    const node = await c.start({ partitions: oneQueue, jobs: [work], engine, continuations: [markedOnly('follow', seen)] });
    const count = async (sql: string, values: unknown[] = []) => Number((await db.pool.query(sql, values)).rows[0].n);
    const completed = () => count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE state = 'completed'`);

    const PLAIN = 100;
    await node.client.enqueueMany(
      'p',
      Array.from({ length: PLAIN }, (_, i) => ({ type: 'work', payload: { i } })),
    );
    await until('the plain jobs completed', async () => (await completed()) === PLAIN, 30_000);
    t.is(seen.length, 0, 'no unmarked job reached the continuation');
    t.is(await continuedOutcomes(node), 0, 'every unmarked outcome took the plain write');

    // Marked jobs of the same type, enqueued as a layer would (store level, one batch statement).
    const MARKED = 40;
    const store = await JobStore.open({ postgres: db.url, schema: db.schema, checkQueues: false });
    try {
      const outcomes = await store.enqueue(
        Array.from({ length: MARKED }, (_, i) => ({ partition: 'p', type: 'work', payload: { i }, continuation: 'follow' })),
      );
      const ids = outcomes.map((o) => o.id);
      await until('the marked jobs completed', async () => (await completed()) === PLAIN + MARKED, 30_000);
      t.deepEqual(seen.map((j) => j.id).sort(), [...ids].sort(), 'each marked job reached the continuation once');
      t.true(
        seen.every((j) => j.state === 'completed' && (j.result as { i: number }).i === (j.payload as { i: number }).i),
        'with its outcome',
      );
      t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".seen`), MARKED, 'what it wrote committed once per job');
      t.is(await count(`SELECT count(DISTINCT job) AS n FROM "${db.schema}".seen WHERE job = ANY($1::uuid[])`, [ids]), MARKED);
      t.is(await continuedOutcomes(node), MARKED, 'only the marked outcomes went through a continuation transaction');
    } finally {
      await store.close();
    }
  } finally {
    await c.close();
  }
});

test('a job marked for a continuation a node does not run stays queued for a node that runs it; a tool claiming any job sees the mark', async (t) => {
  const c = await cluster('cont_mark_missing');
  try {
    const { db } = c;
    await db.pool.query(`CREATE TABLE "${db.schema}".seen (job uuid NOT NULL, continuation text NOT NULL)`);
    const store = await JobStore.open({ postgres: db.url, schema: db.schema, checkQueues: false });
    t.teardown(() => store.close());
    const marked = await store.enqueue(
      Array.from({ length: 10 }, (_, i) => ({ partition: 'p', type: 'work', payload: { i }, continuation: 'follow' })),
    );
    const nobody = await store.enqueue([{ partition: 'p', type: 'work', payload: { i: -1 }, continuation: 'nobody' }]);
    await store.enqueue(Array.from({ length: 10 }, (_, i) => ({ partition: 'p', type: 'work', payload: { i } })));
    const count = async (sql: string, values: unknown[] = []) => Number((await db.pool.query(sql, values)).rows[0].n);
    const queuedMarked = () => count(`SELECT count(*) AS n FROM "${db.schema}".jobs WHERE state = 'queued' AND continuation IS NOT NULL`);

    // A node without the continuation runs the unmarked jobs and leaves the marked ones alone.
    const without = await c.start({ partitions: oneQueue, jobs: [work], engine });
    await until(
      'the unmarked jobs completed',
      async () => (await count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE state = 'completed'`)) === 10,
      30_000,
    );
    await sleep(300); // several more polls
    t.is(await queuedMarked(), 11, 'the marked jobs are still queued: their outcome must not bypass their continuation');
    await without.stop({ graceMs: 200 });

    // A node that runs 'follow' takes its jobs; the job marked for a continuation no node runs waits.
    const seen: FinishedJob[] = [];
    await c.start({ partitions: oneQueue, jobs: [work], engine, continuations: [markedOnly('follow', seen)] });
    await until('the jobs marked for follow completed', async () => seen.length === 10, 30_000);
    t.deepEqual(seen.map((j) => j.id).sort(), marked.map((o) => o.id).sort());
    await sleep(300);
    t.is(await queuedMarked(), 1);
    t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".jobs WHERE id = $1 AND state = 'queued'`, [nobody[0]!.id]), 1);

    // A claim that does not say which continuations it runs (a tool) takes any job, mark included.
    const [claimed] = await store.claim({ nodeId: 'tool', partition: 'p', leaseMs: 10_000, queues: [{ queue: 'default', limit: 5 }] });
    t.is(claimed?.id, nobody[0]!.id);
    t.is(claimed?.continuation, 'nobody');
  } finally {
    await c.close();
  }
});

test('a marked job handed off keeps its mark; a bad mark is a ValidationError naming the field', async (t) => {
  const c = await cluster('cont_mark_bad');
  try {
    const store = await JobStore.open({ postgres: c.db.url, schema: c.db.schema, checkQueues: false });
    t.teardown(() => store.close());
    await t.throwsAsync(store.enqueue([{ partition: 'p', type: 'work', continuation: '' }]), {
      name: 'ValidationError',
      message: /continuation/,
    });
    await t.throwsAsync(store.enqueue([{ partition: 'p', type: 'work', continuation: 7 as unknown as string }]), {
      name: 'ValidationError',
      message: /continuation/,
    });
    // Handed off, the mark is stored and comes back with the job (the hand-off message carries it).
    const { claimed: handed } = await store.enqueueHandedOff({ partition: 'p', type: 'work', continuation: 'follow' }, 'n1', 10_000);
    t.is(handed?.continuation, 'follow');
  } finally {
    await c.close();
  }
});

test("a continuation's prepare sends its statements behind the outcomes' before their answers; run gets what it returned", async (t) => {
  const c = await cluster('cont_prep');
  try {
    const { db } = c;
    const prepared: string[][] = [];
    /** Per run: its jobs, and how many of them the statement sent ahead still found live (none: it ran after the completion). */
    const runs: { jobs: string[]; live: number | undefined }[] = [];
    const ahead: OutcomeContinuation = {
      name: 'ahead',
      prepare: (tx, jobs) => {
        const ids = jobs.map((j) => j.id);
        prepared.push(ids);
        const live = tx.client.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.schema}".jobs WHERE id = ANY($1::uuid[])`, [ids]);
        live.catch(() => undefined);
        return live;
      },
      run: async (_tx, jobs, live) => {
        const answer = (await (live as Promise<{ rows: { n: number }[] }> | undefined))?.rows[0]?.n;
        runs.push({ jobs: jobs.map((j) => j.id), live: answer });
      },
    };
    const node = await c.start({ partitions: oneQueue, jobs: [work], engine, continuations: [ahead] });
    const MARKED = 30;
    void node;
    const store = await JobStore.open({ postgres: db.url, schema: db.schema, checkQueues: false });
    t.teardown(() => store.close());
    const ids = (
      await store.enqueue(
        Array.from({ length: MARKED }, (_, i) => ({ partition: 'p', type: 'work', payload: { i }, continuation: 'ahead' })),
      )
    ).map((o) => o.id);
    await until('every marked job reached run', async () => runs.flatMap((r) => r.jobs).length === MARKED, 30_000);
    t.deepEqual(runs.flatMap((r) => r.jobs).sort(), [...ids].sort());
    t.deepEqual(prepared.flat().sort(), [...ids].sort(), 'prepare saw each job of the batches once');
    t.true(
      runs.every((r) => r.live === 0),
      `the statement sent ahead ran after the completion in the same transaction: ${JSON.stringify(runs.map((r) => r.live))}`,
    );
  } finally {
    await c.close();
  }
});

test('a continuation that records its successes (recordsSuccess): its marked jobs leave no completed history row, its failed ones do, plain jobs keep theirs', async (t) => {
  const c = await cluster('cont_mark_records');
  try {
    const { db } = c;
    await db.pool.query(`CREATE TABLE "${db.schema}".seen (job uuid NOT NULL, continuation text NOT NULL)`);
    const seen: FinishedJob[] = [];
    const keeps: OutcomeContinuation = { ...markedOnly('keeps', seen), recordsSuccess: true };
    const flaky = defineJob<{ fail: boolean }>({
      type: 'flaky',
      perform: (p) => {
        if (p.fail) throw new Error('asked to fail');
        return { ok: true };
      },
    });
    await c.start({ partitions: oneQueue, jobs: [work, flaky], engine, continuations: [keeps] });
    const store = await JobStore.open({ postgres: db.url, schema: db.schema, checkQueues: false });
    t.teardown(() => store.close());
    const enqueue = async (n: number, fail: boolean, continuation?: string) =>
      (
        await store.enqueue(
          Array.from({ length: n }, () => ({
            partition: 'p',
            type: 'flaky',
            payload: { fail },
            ...(continuation ? { continuation } : {}),
          })),
        )
      ).map((o) => o.id);
    const succeeded = await enqueue(20, false, 'keeps');
    const failed = await enqueue(5, true, 'keeps');
    const plain = await enqueue(10, false);
    await until('the marked jobs reached their continuation', async () => seen.length === 25, 30_000);
    const history = async (ids: string[]) =>
      (await db.pool.query(`SELECT id, state FROM "${db.schema}".jobs_history WHERE id = ANY($1::uuid[])`, [ids])).rows as {
        id: string;
        state: string;
      }[];
    await until('the plain jobs completed', async () => (await history(plain)).length === plain.length, 30_000);
    t.deepEqual(await history(succeeded), [], 'a success its continuation records has no history row');
    const failedRows = await history(failed);
    t.is(failedRows.length, failed.length, 'a failure keeps its history row');
    t.true(failedRows.every((r) => r.state === 'failed'));
    t.true(
      (await history(plain)).every((r) => r.state === 'completed'),
      'an unmarked job keeps its completed row',
    );
    const live = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".jobs WHERE id = ANY($1::uuid[])`, [succeeded]);
    t.is(live.rows[0].n, 0, 'the successes left the live table');
    t.deepEqual(
      seen
        .filter((j) => j.state === 'completed')
        .map((j) => j.id)
        .sort(),
      [...succeeded].sort(),
      'each success reached the continuation that keeps it, once',
    );
    t.is(await c.nodes[0]!.client.job(succeeded[0]!), undefined, 'client.job finds no history for it');
  } finally {
    await c.close();
  }
});
