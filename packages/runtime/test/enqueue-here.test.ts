import test from 'ava';
import { JobStore } from '@partita/postgres';
import { defineJob, type ContinuationTx, type FinishedJob } from '@partita/runtime';
import { cluster, until } from './helpers.js';

// tx.enqueueHere: a continuation's follow-ups that this node's engine can start now are stored as its
// running attempts in the continuation's transaction and started after the commit, with no claim;
// the others are queued as tx.enqueue queues them. Real nodes, real Postgres.

// Room for every parent and its follow-ups at once, so each follow-up finds a place in the engine.
const partitions = { p: { queues: { default: { concurrency: 32 }, held: { concurrency: 0 } } } };

test('follow-ups this node can start are stored as its running attempts and run once; keyed, delayed or unserved ones are queued', async (t) => {
  const c = await cluster('enq_here');
  try {
    const ran: { id: string; attempt: number; payload: { kind: string } }[] = [];
    const child = defineJob<{ kind: string }>({
      type: 'child',
      perform: (payload, ctx) => void ran.push({ id: ctx.id, attempt: ctx.attempt, payload }),
    });
    const seen: { kind: string; state: string; lockedBy: string | null; attempts: number }[] = [];
    const kinds = ['here', 'keyed', 'delayed', 'unserved'] as const;
    const parent = defineJob<Record<string, never>>({
      type: 'parent',
      perform: () => null,
      async continuation(tx: ContinuationTx, jobs: FinishedJob[]) {
        const out = await tx.enqueueHere(
          jobs.flatMap((j) => [
            { partition: j.partition, type: 'child', payload: { kind: 'here' } },
            { partition: j.partition, type: 'child', payload: { kind: 'keyed' }, executionKey: `k-${j.id}` },
            { partition: j.partition, type: 'child', payload: { kind: 'delayed' }, delayMs: 60_000 },
            { partition: j.partition, type: 'child', queue: 'held', payload: { kind: 'unserved' } },
          ]),
        );
        // Read in the same transaction: what enqueueHere stored, before anything could claim it.
        const rows = await tx.query<{ id: string; state: string; locked_by: string | null; attempts: number }>(
          'SELECT id, state, locked_by, attempts FROM {{schema}}.jobs WHERE id = ANY($1::uuid[])',
          [out.map((o) => o.id)],
        );
        out.forEach((o, i) => {
          const row = rows.find((r) => r.id === o.id)!;
          seen.push({ kind: kinds[i % 4]!, state: row.state, lockedBy: row.locked_by, attempts: row.attempts });
        });
      },
    });
    const node = await c.start({ partitions, jobs: [parent, child], engine: { pollMs: 50 } });
    const N = 8;
    const of = (kind: string) => seen.filter((s) => s.kind === kind);
    // The engine takes follow-ups into its hands only while it knows its controls, has renewed its
    // leases and has room; on a loaded machine a first round of parents can finish before that, and
    // its follow-ups are queued instead (correct too). Rounds go on until one is taken here.
    let rounds = 0;
    do {
      rounds++;
      await node.client.enqueueMany(
        'p',
        Array.from({ length: N }, () => ({ type: 'parent', payload: {} })),
      );
      await until('every parent went through its continuation', async () => seen.length === 4 * N * rounds, 20_000);
    } while (!of('here').some((s) => s.state === 'running') && rounds < 10);
    const total = N * rounds;
    t.log(`${rounds} round(s) of ${N} parents`);
    const here = of('here');
    const held = here.filter((s) => s.state === 'running');
    t.true(held.length > 0, "follow-ups stored in the node's hands");
    t.true(
      held.every((s) => s.lockedBy === node.id && s.attempts === 1),
      'stored as this node running attempt 1',
    );
    t.true(
      here.every((s) => s.state === 'running' || (s.state === 'queued' && s.lockedBy === null && s.attempts === 0)),
      'the rest queued for a claim',
    );
    for (const kind of ['keyed', 'delayed', 'unserved'])
      t.true(
        of(kind).every((s) => s.state === 'queued' && s.lockedBy === null && s.attempts === 0),
        `${kind}: queued for a claim`,
      );
    await until('the follow-ups ran', async () => ran.filter((r) => r.payload.kind !== 'delayed').length === 2 * total, 20_000);
    const hereRan = ran.filter((r) => r.payload.kind === 'here');
    t.is(new Set(hereRan.map((r) => r.id)).size, total, 'each ran once');
    t.true(
      hereRan.every((r) => r.attempt === 1),
      'on the attempt it was stored with',
    );
    // A perform that returned is recorded by the engine's next flush, not at once.
    const completedFirst = async () =>
      (
        await c.db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM "${c.db.schema}".jobs_history WHERE type = 'child' AND state = 'completed' AND attempts = 1`,
        )
      ).rows[0]!.n;
    await until('the follow-ups recorded', async () => (await completedFirst()) >= 2 * total, 20_000).catch(() => undefined);
    t.is(await completedFirst(), 2 * total, 'recorded completed once each, first attempt');
  } finally {
    await c.close();
  }
});

test('a paused queue takes no follow-up into the hands of its node: they are queued and run after resume', async (t) => {
  const c = await cluster('enq_here_pause');
  try {
    const ran: string[] = [];
    const child = defineJob({ type: 'child', queue: 'later', perform: (_p, ctx) => void ran.push(ctx.id) });
    const states: string[] = [];
    const parent = defineJob({
      type: 'parent',
      perform: () => null,
      async continuation(tx: ContinuationTx, jobs: FinishedJob[]) {
        const out = await tx.enqueueHere(jobs.map((j) => ({ partition: j.partition, type: 'child', queue: 'later' })));
        const rows = await tx.query<{ state: string }>('SELECT state FROM {{schema}}.jobs WHERE id = ANY($1::uuid[])', [
          out.map((o) => o.id),
        ]);
        states.push(...rows.map((r) => r.state));
      },
    });
    const node = await c.start({
      partitions: { p: { queues: { default: { concurrency: 4 }, later: { concurrency: 4 } } } },
      jobs: [parent, child],
      engine: { pollMs: 50 },
    });
    await node.client.pause('p', 'later');
    await until(
      'the engine knows of the pause',
      async () => (await node.stats()).some((s) => s.partition === 'p' && s.paused.includes('later')),
      10_000,
    );
    await node.client.enqueue('p', 'parent', {});
    await until('the continuation ran', async () => states.length === 1, 10_000);
    t.deepEqual(states, ['queued']);
    t.deepEqual(ran, [], 'nothing runs in a paused queue');
    await node.client.resume('p', 'later');
    await until('the follow-up ran after resume', async () => ran.length === 1, 10_000);
    t.pass();
  } finally {
    await c.close();
  }
});

test('a job stored as a node’s running attempt whose node never starts it is rescued when its lease runs out, and runs once', async (t) => {
  const c = await cluster('enq_here_rescue');
  const store = await JobStore.open({ postgres: c.db.url, schema: c.db.schema });
  try {
    const ran: { id: string; attempt: number }[] = [];
    const child = defineJob({ type: 'child', perform: (_p, ctx) => void ran.push({ id: ctx.id, attempt: ctx.attempt }) });
    await c.start({ partitions, jobs: [child], engine: { pollMs: 50, leaseMs: 1500, heartbeatMs: 300 } });
    // As a node killed between the commit and the hand-over to its engine leaves it.
    const [job] = await store.withTransaction((tx) => tx.enqueueLeased([{ partition: 'p', type: 'child' }], 'gone-node', 2000));
    t.truthy(job!.claimed, 'leased, not stored queued');
    const { rows } = await c.db.pool.query(`SELECT state, locked_by FROM "${c.db.schema}".jobs WHERE id = $1`, [job!.id]);
    t.like(rows[0], { state: 'running', locked_by: 'gone-node' });
    await until('the job ran', async () => ran.length > 0, 15_000);
    // Its outcome is written by the engine's batched writer a moment after the run.
    const history = await until(
      'the run is recorded',
      async () => {
        const r = await c.db.pool.query(`SELECT state, attempts, errors FROM "${c.db.schema}".jobs_history WHERE id = $1`, [job!.id]);
        return r.rows.length > 0 ? r : undefined;
      },
      10_000,
    );
    t.is(history.rows[0].state, 'completed');
    t.is(history.rows[0].attempts, 2, 'the lost attempt counts');
    t.like(history.rows[0].errors[0], { name: 'LeaseExpired', rescued: true });
    t.deepEqual(
      ran.map((r) => r.id),
      [job!.id],
      'ran once',
    );
    await t.throwsAsync(
      store.withTransaction((tx) => tx.enqueueLeased([{ partition: 'p', type: 'child', executionKey: 'k' }], 'n', 1000)),
      { message: /claimed, never leased/ },
      'a keyed job is refused with a clear error',
    );
  } finally {
    await store.close();
    await c.close();
  }
});

test('a follow-up taken into the hands of its node waits behind a higher-priority job of its queue claimed after it', async (t) => {
  const c = await cluster('enq_here_prio');
  try {
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    const blocker = defineJob({ type: 'blocker', queue: 'one', perform: () => released });
    const order: string[] = [];
    const work = defineJob<{ name: string }>({ type: 'work', queue: 'one', perform: (p) => void order.push(p.name) });
    const stored: string[] = [];
    const parent = defineJob({
      type: 'parent',
      perform: () => null,
      async continuation(tx: ContinuationTx, jobs: FinishedJob[]) {
        const out = await tx.enqueueHere(
          jobs.map((j) => ({ partition: j.partition, type: 'work', queue: 'one', priority: 5, payload: { name: 'low, handed' } })),
        );
        const rows = await tx.query<{ state: string }>('SELECT state FROM {{schema}}.jobs WHERE id = ANY($1::uuid[])', [
          out.map((o) => o.id),
        ]);
        stored.push(...rows.map((r) => r.state));
      },
    });
    const node = await c.start({
      partitions: { p: { queues: { default: { concurrency: 4 }, one: { concurrency: 1 } } } },
      jobs: [parent, blocker, work],
      engine: { pollMs: 50 },
    });
    const s = `"${c.db.schema}"`;
    const running = async (type: string) =>
      (await c.db.pool.query(`SELECT 1 FROM ${s}.jobs WHERE type = $1 AND state = 'running' AND locked_by = $2`, [type, node.id]))
        .rowCount! > 0;
    // The blocker takes the queue's only slot: what comes after waits in the engine's buffer.
    await node.client.enqueue('p', 'blocker', {});
    await until('the blocker runs', () => running('blocker'), 10_000);
    await node.client.enqueue('p', 'parent', {});
    await until('the continuation ran', async () => stored.length === 1, 10_000);
    t.deepEqual(stored, ['running'], "the follow-up was stored in the node's hands");
    await node.client.enqueue('p', 'work', { name: 'urgent, claimed' }, { priority: -5 });
    await until(
      'the urgent job is claimed into the buffer',
      async () =>
        (
          await c.db.pool.query(`SELECT count(*)::int AS n FROM ${s}.jobs WHERE type = 'work' AND state = 'running' AND locked_by = $1`, [
            node.id,
          ])
        ).rows[0].n === 2,
      10_000,
    );
    release();
    await until('both ran', async () => order.length === 2, 10_000);
    t.deepEqual(order, ['urgent, claimed', 'low, handed'], 'the queue runs in priority order, whichever way a job reached the node');
  } finally {
    await c.close();
  }
});
