/**
 * startAll / stopAll start every stage's queue in flow order and stop them in reverse, on a node
 * the flow starts and on a node it joins (a node that loaded flow.jobs()): a stage running at
 * stopAll finishes, and what it hands on stays queued in the stage after it, already stopped; after
 * stopAll no stage runs while the jobs stay queued, and startAll resumes them. The order is read
 * from the node's own log lines (node.startQueues / node.stopQueues).
 */
import test from 'ava';
import { createLogger } from '@partita/core';
import { sleep, until } from '../../../test/helpers/index.js';
import { defineFlow, type Flow } from '../src/index.js';
import { flowEnv, flowNode } from './flows-helpers.js';

type State = { s1?: number; s2?: number; s3?: number };
type Params = { k: string; hold?: boolean };

/** A logger whose queue start/stop lines are kept in order: ['start', queue] / ['stop', queue]. */
function queueLog() {
  const order: [string, string][] = [];
  const logger = createLogger(
    { level: 'info' },
    {
      write(line: string) {
        const l = JSON.parse(line) as { msg: string; queues?: string[] };
        if (l.msg.startsWith('running queues')) for (const q of l.queues ?? []) order.push(['start', q]);
        if (l.msg.startsWith('stopping queues')) for (const q of l.queues ?? []) order.push(['stop', q]);
      },
    },
  );
  return { order, logger };
}

function stagedFlow(runs: { stage: string; k: string }[], gate: { open: Promise<void>; inS2: Set<string> }): Flow<State, Params, 'k'> {
  const flow = defineFlow<State, Params, 'k'>({
    name: 'ordered',
    queues: [{ name: 's1', nextQueue: 's2', lookupAttributes: ['k'] }, { name: 's2', nextQueue: 's3' }, { name: 's3' }],
  });
  flow.createWorkers('s1', (j) => (runs.push({ stage: 's1', k: j.params.k }), { s1: 1 }));
  flow.createWorkers('s2', async (j) => {
    runs.push({ stage: 's2', k: j.params.k });
    gate.inS2.add(j.params.k);
    if (j.params.hold) await gate.open;
    return { s2: 2 };
  });
  flow.createWorkers('s3', (j) => (runs.push({ stage: 's3', k: j.params.k }), { s3: 3 }));
  return flow;
}

const Q = ['flow-ordered--s1', 'flow-ordered--s2', 'flow-ordered--s3'];

test.serial('standalone: startAll starts the stages in order on its node, stopAll stops them in reverse and the node', async (t) => {
  const { db, nodeOptions } = await flowEnv(t, 'flow_order');
  const runs: { stage: string; k: string }[] = [];
  let open: () => void = () => undefined;
  const gate = { open: new Promise<void>((r) => (open = r)), inS2: new Set<string>() };
  const flow = stagedFlow(runs, gate);
  t.deepEqual(flow.jobQueues(), Q);
  t.teardown(async () => {
    open();
    await flow.stopAll({ graceMs: 100 });
  });
  const first = queueLog();
  await flow.startAll({ ...nodeOptions, logger: first.logger });
  t.deepEqual(
    first.order,
    Q.map((q) => ['start', q]),
  );

  const held = await flow.createJob({ k: 'held', hold: true });
  await until('the held job runs its second stage', async () => gate.inS2.has('held'), 20_000, 50);
  let stopped = false;
  const stopping = flow.stopAll({ graceMs: 60_000 }).then(() => (stopped = true));
  await until('s3 stopped', async () => first.order.some(([, q]) => q === Q[2]), 10_000, 20);
  await sleep(300);
  t.false(stopped, 'stopAll waits for the running stage');
  t.deepEqual(
    first.order.slice(3),
    [
      ['stop', Q[2]],
      ['stop', Q[1]],
    ],
    's3 first, then s2, whose running job is still in hand',
  );
  open();
  await stopping;
  t.deepEqual(first.order.slice(3), Q.map((q) => ['stop', q]).reverse());
  t.false(
    runs.some((r) => r.stage === 's3'),
    "the job's third stage did not run: s3 had stopped before s2's running job handed it on",
  );

  // A program that only reads: the job waits in s3.
  const { connect } = await import('@partita/client');
  const client = await connect({ postgres: db.url, schema: db.schema, nats: false });
  t.teardown(() => client.close());
  const reader = defineFlow<State, Params, 'k'>({
    name: 'ordered',
    queues: [{ name: 's1', nextQueue: 's2', lookupAttributes: ['k'] }, { name: 's2', nextQueue: 's3' }, { name: 's3' }],
  }).useClient(client);
  t.like((await reader.getJobsByKey('k', 'held'))[0], { id: held, status: 'running', stage: 's3', state: { s1: 1, s2: 2 } });

  const second = queueLog();
  await flow.startAll({ ...nodeOptions, logger: second.logger });
  t.deepEqual(
    second.order,
    Q.map((q) => ['start', q]),
  );
  await until(
    'the held job completed after startAll',
    async () => (await reader.getJobsByKey('k', 'held'))[0]?.status === 'completed',
    20_000,
    50,
  );
  t.deepEqual(
    runs.filter((r) => r.k === 'held').map((r) => r.stage),
    ['s1', 's2', 's3'],
    'each stage once',
  );
});

test.serial(
  'joined: stopAll stops the stages on the node it joined (in reverse) and leaves the node running; startAll resumes',
  async (t) => {
    const { nodeOptions } = await flowEnv(t, 'flow_order_join');
    const runs: { stage: string; k: string }[] = [];
    let open: () => void = () => undefined;
    const gate = { open: new Promise<void>((r) => (open = r)), inS2: new Set<string>() };
    // The node's copy of the flow (its jobs module's), and the program's, which joins it.
    const moduleFlow = stagedFlow(runs, gate);
    const flow = stagedFlow([], { open: Promise.resolve(), inS2: new Set() });
    const log = queueLog();
    const node = await flowNode(t, flow, nodeOptions, {
      jobs: moduleFlow.jobs(),
      partitions: { default: { queues: { default: { concurrency: 4 }, ...moduleFlow.queueConfig() } } },
      stoppedQueues: { default: moduleFlow.jobQueues() },
      logger: log.logger,
    });
    // Registered last, so it runs first: the held worker lets go before the flow and node stop.
    t.teardown(open);
    await flow.startAll({ node });
    t.deepEqual(
      log.order,
      Q.map((q) => ['start', q]),
      'started stopped, then in order',
    );

    const held = await flow.createJob({ k: 'held', hold: true });
    await until('the held job runs its second stage', async () => gate.inS2.has('held'), 20_000, 50);
    const stopping = flow.stopAll({ graceMs: 60_000 });
    await until('s2 stopping', async () => log.order.length >= 5, 10_000, 20);
    open();
    await stopping;
    t.deepEqual(log.order.slice(3), Q.map((q) => ['stop', q]).reverse());
    t.deepEqual((await node.stats()).find((e) => e.partition === 'default')!.held.sort(), [...Q].sort());

    // The node runs on; the flow's stages do not: a new job stays in its first stage.
    const reader = stagedFlow([], { open: Promise.resolve(), inS2: new Set() }).useClient(node.client);
    const queued = await reader.createJob({ k: 'queued' });
    await sleep(1000);
    t.false(
      runs.some((r) => r.k === 'queued' || (r.k === 'held' && r.stage === 's3')),
      'no stage ran after stopAll',
    );
    t.like((await reader.getJobsByKey('k', 'queued'))[0], { id: queued, status: 'running', stage: 's1' });
    t.like((await reader.getJobsByKey('k', 'held'))[0], { id: held, status: 'running', stage: 's3' });

    await flow.startAll({ node });
    t.deepEqual(
      log.order.slice(6),
      Q.map((q) => ['start', q]),
    );
    await until(
      'both jobs completed',
      async () =>
        (await reader.getJobsByKey('k', 'queued'))[0]?.status === 'completed' &&
        (await reader.getJobsByKey('k', 'held'))[0]?.status === 'completed',
      20_000,
      50,
    );
    t.deepEqual(
      runs.map((r) => `${r.k}:${r.stage}`).sort(),
      ['held:s1', 'held:s2', 'held:s3', 'queued:s1', 'queued:s2', 'queued:s3'],
      'each stage of each job once',
    );
  },
);
