/**
 * node.stopQueues / node.startQueues: one node stops running some queues (no claims, prefetched jobs
 * handed back, running ones finish and are recorded before the call resolves) while its other queues
 * go on; the jobs stay queued until startQueues. A node started with `stoppedQueues` runs them only
 * from startQueues on. After the grace period the running jobs are aborted and handed back.
 */
import test from 'ava';
import { STATUS_COMPLETED, STATUS_PENDING, ValidationError, silentLogger } from '@partita/core';
import { defineJob } from '@partita/runtime';
import { cluster, sleep, until } from './helpers.js';

const partitions = { p: { queues: { a: { concurrency: 2 }, b: { concurrency: 2 } } } };

test.serial('stopQueues: running jobs finish and are recorded first; queued jobs stay until startQueues; other queues go on', async (t) => {
  const c = await cluster('qstop');
  t.teardown(() => c.close());
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const started: string[] = [];
  const node = await c.start({
    partitions,
    engine: { pollMs: 50 },
    logger: silentLogger(),
    stoppedQueues: { p: ['a'] },
    jobs: [
      defineJob({ type: 'slow', queue: 'a', perform: async (_p, ctx) => (started.push(ctx.id), await gate, 'slow done') }),
      defineJob({ type: 'fast', queue: 'b', perform: () => 'fast done' }),
    ],
  });
  t.deepEqual((await node.stats())[0]!.held, ['a']);
  await t.throwsAsync(node.startQueues('p', ['nope']), { instanceOf: ValidationError, message: /no queue nope/ });
  await t.throwsAsync(node.stopQueues('q', ['a']), { instanceOf: ValidationError, message: /no partition "q"/ });

  // Started stopped: a job of `a` waits, one of `b` runs.
  const first = await node.client.enqueue('p', 'slow', {});
  const fast = await node.client.enqueue('p', 'fast', {});
  await until('the fast job ran', async () => (await node.client.status(fast.id)) === STATUS_COMPLETED, 10_000, 50);
  await sleep(300);
  t.deepEqual(started, [], 'queue a starts stopped');
  t.is(await node.client.status(first.id), STATUS_PENDING);

  await node.startQueues('p', ['a']);
  const second = await node.client.enqueue('p', 'slow', {});
  await until('both slow jobs run', async () => started.length === 2, 10_000, 50);

  // Stop while both run: the call waits for them.
  let stopped = false;
  const stopping = node.stopQueues('p', ['a'], { graceMs: 30_000 }).then(() => (stopped = true));
  const third = await node.client.enqueue('p', 'slow', {});
  const fast2 = await node.client.enqueue('p', 'fast', {});
  await until('queue b still runs', async () => (await node.client.status(fast2.id)) === STATUS_COMPLETED, 10_000, 50);
  await sleep(300);
  t.false(stopped, 'stopQueues waits for the running jobs');
  release();
  await stopping;
  // Resolved only once their outcomes are recorded.
  t.is(await node.client.status(first.id), STATUS_COMPLETED);
  t.is(await node.client.status(second.id), STATUS_COMPLETED);
  await sleep(500);
  t.is(started.length, 2, 'no job of a stopped queue starts');
  t.is(await node.client.status(third.id), STATUS_PENDING, 'its jobs stay queued');
  t.deepEqual((await node.stats())[0]!.held, ['a']);
  t.deepEqual((await node.stats())[0]!.paused, [], 'a node-local stop is no pause of the cluster');

  await node.startQueues('p', ['a']);
  await until('the queued job ran after startQueues', async () => (await node.client.status(third.id)) === STATUS_COMPLETED, 10_000, 50);
  t.deepEqual((await node.stats())[0]!.held, []);
});

test.serial('stopQueues: after the grace period running jobs are aborted and handed back to the queue', async (t) => {
  const c = await cluster('qstop_grace');
  t.teardown(() => c.close());
  let runs = 0;
  const node = await c.start({
    partitions,
    engine: { pollMs: 50 },
    logger: silentLogger(),
    jobs: [
      defineJob({
        type: 'stuck',
        queue: 'a',
        maxAttempts: 1,
        perform: (_p, ctx) =>
          new Promise((_resolve, reject) => {
            runs++;
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
          }),
      }),
    ],
  });
  const job = await node.client.enqueue('p', 'stuck', {});
  await until('the job runs', async () => runs === 1, 10_000, 50);
  const t0 = Date.now();
  await node.stopQueues('p', ['a'], { graceMs: 200 });
  t.true(Date.now() - t0 >= 150, 'waited for the grace period');
  t.is(await node.client.status(job.id), STATUS_PENDING, 'handed back, queued again, not failed');
  await sleep(300);
  t.is(runs, 1);
});
