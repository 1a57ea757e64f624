import test from 'ava';
import { defineJob, type PartitaNode } from '@partita/runtime';
import { connect, globalApi, requestGlobal, type GlobalRequest } from '@partita/client';
import { JobCancelledError, STATUS_PENDING } from '@partita/core';
import { cluster, sleep, until } from './helpers.js';
import { clientStore } from '@partita/client/internal';

const send =
  (node: PartitaNode, partition = 'p') =>
  <T>(request: GlobalRequest) =>
    // A loaded machine (load 24) saw a pause right after two nodes started take over the 5 s default.
    requestGlobal<T>(node.bus, node.client.cluster, partition, request, 20_000);

test('an execution key admits one running job at a time, waiters run in FIFO order and show as waiting', async (t) => {
  const c = await cluster('execkey');
  try {
    const spans: { n: number; start: number; end: number }[] = [];
    const job = defineJob<{ n: number }>({
      type: 'exclusive',
      executionKey: () => 'account-1',
      perform: async (p) => {
        const start = Date.now();
        await sleep(80);
        spans.push({ n: p.n, start, end: Date.now() });
      },
    });
    const node = await c.start({ partitions: { p: { queues: { default: { concurrency: 8 } } } }, jobs: [job], engine: { pollMs: 50 } });
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push((await node.client.enqueue('p', 'exclusive', { n })).id);
    await until('some job waiting', async () => (await node.client.job(ids[4]!))?.state === 'waiting' || spans.length === 5);
    if (spans.length < 5) t.is(await node.client.status(ids[4]!), STATUS_PENDING);
    await until('all five ran', async () => spans.length === 5, 30_000);
    t.deepEqual(
      spans.map((s) => s.n),
      [0, 1, 2, 3, 4],
      'FIFO by enqueue order',
    );
    for (let i = 1; i < spans.length; i++) t.true(spans[i]!.start >= spans[i - 1]!.end, `run ${i} started after run ${i - 1} ended`);
    const api = globalApi(send(node));
    await until('key released', async () => !(await api.executionKeyHeld('account-1')));
    t.false(await api.executionKeyHeld('account-1'));
    const served = (await node.metrics.registry.getSingleMetric('partita_global_calls_total')?.get())?.values ?? [];
    const keyChecks = served.find((v) => v.labels.op === 'executionKeyHeld' && v.labels.outcome === 'ok' && v.labels.partition === 'p');
    t.true((keyChecks?.value ?? 0) >= 1, 'the leader counts the Global requests it serves');
  } finally {
    await c.close();
  }
});

// A keyed drain: each completion passes its key to the next job in its own statement, taking it
// into the node's hands, and batches of keyed completions are written two at a time (small
// batches here, so there are many of them side by side).
test('a drain of many keys runs each job once, each key’s jobs one at a time in enqueue order', async (t) => {
  const c = await cluster('execkeydrain');
  try {
    const KEYS = 40;
    const ROUNDS = 12;
    const runs: { k: number; n: number; start: number; end: number }[] = [];
    const running = new Set<number>();
    let overlaps = 0;
    const job = defineJob<{ k: number; n: number }>({
      type: 'keyed',
      executionKey: (p) => `key-${p.k}`,
      perform: async (p) => {
        if (running.has(p.k)) overlaps++;
        running.add(p.k);
        const start = Date.now();
        await sleep(p.n % 3);
        running.delete(p.k);
        runs.push({ k: p.k, n: p.n, start, end: Date.now() });
      },
    });
    const node = await c.start({
      partitions: { p: { queues: { default: { concurrency: 16 } } } },
      jobs: [job],
      engine: { pollMs: 50, flushBatch: 10 },
    });
    // One enqueue per round: a key's jobs of later rounds come later in its order.
    for (let n = 0; n < ROUNDS; n++)
      await node.client.enqueueMany(
        'p',
        Array.from({ length: KEYS }, (_, k) => ({ type: 'keyed', payload: { k, n } })),
      );
    await until('every job ran', async () => runs.length >= KEYS * ROUNDS, 60_000);
    await until(
      'every job recorded',
      async () => (await c.db.pool.query(`SELECT count(*)::int AS n FROM "${c.db.schema}".jobs`)).rows[0].n === 0,
      20_000,
    );
    await sleep(200);
    t.is(runs.length, KEYS * ROUNDS, 'each job ran once');
    t.is(overlaps, 0, 'no key ran two jobs at once');
    for (let k = 0; k < KEYS; k++) {
      const ofKey = runs.filter((r) => r.k === k);
      t.deepEqual(
        ofKey.map((r) => r.n),
        Array.from({ length: ROUNDS }, (_, n) => n),
        `key ${k} in enqueue order`,
      );
    }
    const { rows } = await c.db.pool.query(`SELECT count(*)::int AS n FROM "${c.db.schema}".execution_key_heads`);
    t.is(rows[0].n, 0, 'every key left empty lost its head row');
  } finally {
    await c.close();
  }
});

test('jobs with different execution keys run side by side', async (t) => {
  const c = await cluster('execkeys');
  try {
    let running = 0;
    let peak = 0;
    const job = defineJob<{ k: string }>({
      type: 'k',
      executionKey: (p) => p.k,
      perform: async () => {
        peak = Math.max(peak, ++running);
        await sleep(150);
        running--;
      },
    });
    const node = await c.start({ partitions: { p: { queues: { default: { concurrency: 8 } } } }, jobs: [job], engine: { pollMs: 50 } });
    await node.client.enqueueMany(
      'p',
      ['a', 'b', 'c', 'd'].map((k) => ({ type: 'k', payload: { k } })),
    );
    await until(
      'all done',
      async () => (await c.db.pool.query(`SELECT count(*)::int AS n FROM "${c.db.schema}".jobs`)).rows[0].n === 0,
      20_000,
    );
    t.true(peak >= 3, `peak concurrency ${peak}`);
  } finally {
    await c.close();
  }
});

test('pause stops claims for a queue on every node and survives a restart of every node; resume restarts them', async (t) => {
  const c = await cluster('pause');
  try {
    const ran: string[] = [];
    const job = defineJob({ type: 'j', queue: 'mail', perform: (_p, ctx) => void ran.push(ctx.id) });
    const partitions = { p: { queues: { mail: { concurrency: 2 }, other: { concurrency: 2 } } } };
    const a = await c.start({ partitions, jobs: [job], nodeId: 'a', engine: { pollMs: 50 } });
    const b = await c.start({ partitions, jobs: [job], nodeId: 'b', engine: { pollMs: 50 } });
    const api = globalApi(send(b));
    t.deepEqual(await send(b)<string[]>({ op: 'pause', queue: 'mail' }), ['mail']);
    await until(
      'both engines paused',
      async () => (await a.stats())[0]!.paused.includes('mail') && (await b.stats())[0]!.paused.includes('mail'),
    );
    const { id } = await a.client.enqueue('p', 'j');
    await sleep(400);
    t.deepEqual(ran, [], 'a paused queue is not claimed');
    await a.stop();
    await b.stop();
    c.nodes.length = 0;
    const a2 = await c.start({ partitions, jobs: [job], nodeId: 'a2', engine: { pollMs: 50 } });
    t.deepEqual(await globalApi(send(a2)).pausedQueues(), ['mail'], 'the pause survived every node restarting');
    await sleep(400);
    t.deepEqual(ran, []);
    await send(a2)({ op: 'resume', queue: 'mail' });
    await a2.client.result(id, { timeoutMs: 10_000 });
    t.deepEqual(ran, [id]);
    t.deepEqual(await api.pausedQueues().catch(() => globalApi(send(a2)).pausedQueues()), []);
  } finally {
    await c.close();
  }
});

test('throttle -1 stops processing until lifted; a node that starts later obeys it', async (t) => {
  const c = await cluster('throttle');
  try {
    const ran: string[] = [];
    const job = defineJob({ type: 'j', perform: (_p, ctx) => void ran.push(ctx.id) });
    const partitions = { p: { queues: { default: { concurrency: 2 } } } };
    const a = await c.start({ partitions, jobs: [job], nodeId: 'a', engine: { pollMs: 50 } });
    await send(a)({ op: 'throttle', rule: { ms: -1 } });
    const b = await c.start({ partitions, jobs: [job], nodeId: 'b', engine: { pollMs: 50 } });
    await until('b obeys the stop', async () => (await b.stats())[0]!.throttleMs === -1);
    const { id } = await a.client.enqueue('p', 'j');
    await sleep(400);
    t.deepEqual(ran, []);
    await t.throwsAsync(send(a)({ op: 'throttle', rule: { ms: -5 } }), { message: /-1/ });
    await send(a)({ op: 'throttle', rule: { ms: 0 } });
    await a.client.result(id, { timeoutMs: 10_000 });
    t.deepEqual(ran, [id]);
  } finally {
    await c.close();
  }
});

test('Global cancel: a waiting job never runs; a running one is aborted with onCancel once; the set stays bounded', async (t) => {
  const c = await cluster('gcancel');
  try {
    const ran: string[] = [];
    const cancels: string[] = [];
    const job = defineJob({
      type: 'j',
      executionKey: () => 'k',
      perform: (_p, ctx) =>
        new Promise((_, reject) => {
          ran.push(ctx.id);
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
        }),
      onCancel: (_p, ctx) => void cancels.push(ctx.id),
    });
    const node = await c.start({ partitions: { p: { queues: { default: { concurrency: 4 } } } }, jobs: [job], engine: { pollMs: 50 } });
    const { id: first } = await node.client.enqueue('p', 'j');
    const { id: second } = await node.client.enqueue('p', 'j');
    await until(
      'first running, second waiting',
      async () => ran.length === 1 && (await node.client.job(second))?.state === 'waiting',
      60_000,
    );
    const api = globalApi(send(node));
    t.true(await api.cancelJob(second));
    t.true(await api.isCancelled(second));
    t.true(await api.cancelJob(first));
    await t.throwsAsync(node.client.result(first, { timeoutMs: 10_000 }), { instanceOf: JobCancelledError });
    await t.throwsAsync(node.client.result(second, { timeoutMs: 10_000 }), { instanceOf: JobCancelledError });
    await until('onCancel', async () => cancels.length === 1);
    await sleep(300);
    t.deepEqual(ran, [first], 'the waiting job never ran');
    t.deepEqual(cancels, [first]);
    await until('cancel set emptied', async () => (await send(node)<{ cancelled: string[] }>({ op: 'snapshot' })).cancelled.length === 0);
    t.false(await api.executionKeyHeld('k'));
  } finally {
    await c.close();
  }
});

test('queue keys through Global: taken while the job lives, releasable, free once it finished', async (t) => {
  const c = await cluster('gqueue');
  try {
    const job = defineJob({ type: 'j', queueKey: () => 'invoice-9', perform: () => 1 });
    const node = await c.start({ partitions: { p: { queues: { default: { concurrency: 0 } } } }, jobs: [job] });
    const api = globalApi(send(node));
    await node.client.enqueue('p', 'j');
    t.true(await api.queueKeyTaken('invoice-9'));
    await t.throwsAsync(node.client.enqueue('p', 'j'), { message: /invoice-9/ });
    t.true(await api.releaseQueueKey('invoice-9'));
    t.false(await api.queueKeyTaken('invoice-9'));
    t.truthy(await node.client.enqueue('p', 'j'));
  } finally {
    await c.close();
  }
});

test('Postgres holds execution keys: the snapshot shows holder and FIFO waiters; releasing a key by hand lets the next job start', async (t) => {
  const c = await cluster('gkeyview');
  try {
    const started: number[] = [];
    const gates = new Map<number, () => void>();
    const job = defineJob<{ n: number }>({
      type: 'held',
      executionKey: () => 'k',
      perform: (p) =>
        new Promise<void>((resolve) => {
          started.push(p.n);
          gates.set(p.n, resolve);
        }),
    });
    const node = await c.start({ partitions: { p: { queues: { default: { concurrency: 4 } } } }, jobs: [job], engine: { pollMs: 50 } });
    const ask = send(node);
    const api = globalApi(ask);
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) ids.push((await node.client.enqueue('p', 'held', { n })).id);
    await until('the first job runs', async () => started.length === 1);
    const snap = await ask<{ executionKeys: Record<string, { holder: string; waiters: string[]; waiting: number }> }>({
      op: 'snapshot',
    });
    t.deepEqual(snap.executionKeys, { k: { holder: ids[0], waiters: [ids[1], ids[2]], waiting: 2 } });
    t.true(await api.executionKeyHeld('k'));
    await sleep(200);
    t.deepEqual(started, [0], 'the key admits one running job');
    // Released by hand: job 0 goes on without the key, job 1 takes it.
    t.true(await api.releaseExecutionKey('k'));
    await until('the second job runs', async () => started.length === 2);
    t.deepEqual(started, [0, 1]);
    t.false(await api.releaseExecutionKey('nobody-holds-this'));
    for (const n of [0, 1]) gates.get(n)!();
    await until('the third job runs', async () => started.length === 3);
    gates.get(2)!();
    await until('key free', async () => !(await api.executionKeyHeld('k')));
    t.deepEqual((await ask<{ executionKeys: object }>({ op: 'snapshot' })).executionKeys, {});
  } finally {
    await c.close();
  }
});

test('a job stored without its execution key (enqueued by a client without the definitions) gets the key its definition derives', async (t) => {
  const c = await cluster('gderived');
  try {
    let running = 0;
    let peak = 0;
    const job = defineJob<{ n: number }>({
      type: 'derived',
      executionKey: () => 'shared',
      perform: async () => {
        peak = Math.max(peak, ++running);
        await sleep(30);
        running--;
      },
    });
    // A client that has no definitions stores no key on the rows (enqueued before any node runs).
    const bare = await connect({ postgres: c.db.url, schema: c.db.schema });
    try {
      await clientStore(bare).registerQueues('setup', [{ partition: 'p', queue: 'default', concurrency: 8 }]);
      await bare.enqueueMany(
        'p',
        Array.from({ length: 6 }, (_, n) => ({ type: 'derived', payload: { n }, allowUnknownType: true })),
      );
    } finally {
      await bare.close();
    }
    t.is((await c.db.pool.query(`SELECT count(*)::int AS n FROM "${c.db.schema}".jobs WHERE execution_key IS NULL`)).rows[0].n, 6);
    await c.start({ partitions: { p: { queues: { default: { concurrency: 8 } } } }, jobs: [job], engine: { pollMs: 50 } });
    await until(
      'all done',
      async () => (await c.db.pool.query(`SELECT count(*)::int AS n FROM "${c.db.schema}".jobs`)).rows[0].n === 0,
      20_000,
    );
    t.is(peak, 1, 'one at a time under the derived key');
    const { rows } = await c.db.pool.query(`SELECT execution_key, attempts FROM "${c.db.schema}".jobs_history WHERE type = 'derived'`);
    t.deepEqual(
      rows.map((r) => [r.execution_key, r.attempts]),
      Array.from({ length: 6 }, () => ['shared', 1]),
      'the key was recorded; handing back did not count an attempt',
    );
  } finally {
    await c.close();
  }
});
