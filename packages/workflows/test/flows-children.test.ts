/**
 * Parent and child stages: a parent worker returns its children's params, each child runs in its
 * child queue (one child workflow per element, the array fan-out), reads and writes its own slice,
 * and the next stage runs once, after the last child, seeing every child's record. getJobsByKey
 * with resolveChildren returns the child jobs themselves; cancelling the parent stops its children.
 */
import test from 'ava';
import { until } from '../../../test/helpers/index.js';
import { defineFlow, type FlowEvent } from '../src/index.js';
import { flowEnv, startFlow } from './flows-helpers.js';

type Job = { order: string; lines?: number; total?: number; packedBy?: string[] };
type Params = { order: string; items: number[] };

test.serial('a parent stage fans out to its children; the next stage runs after the last one with their records', async (t) => {
  const { db, nodeOptions } = await flowEnv(t, 'flow_children');
  const flow = defineFlow<Job, Params, 'order'>({
    name: 'packing',
    queues: [
      { name: 'split', nextQueue: 'sum', children: [{ queue: 'pack' }], lookupAttributes: ['order'] },
      { name: 'pack' },
      { name: 'sum' },
    ],
  });
  flow.createParentWorkers('split', (job) => job.params.items.map((n) => ({ n })));
  flow.createChildWorkers<{ n: number; packed?: number }, { n: number }>(
    'pack',
    async (child) => {
      await new Promise((r) => setTimeout(r, 5));
      return { packed: child.params.n * 10, n: child.state.n };
    },
    { concurrency: 8 },
  );
  const sums: string[] = [];
  flow.createWorkers('sum', (job) => {
    sums.push(job.id);
    const packed = job.children['pack']!.map((c) => (c.state as { packed: number }).packed);
    return { lines: packed.length, total: packed.reduce((a, b) => a + b, 0) };
  });
  const events: FlowEvent[] = [];
  flow.on('completed', (e) => events.push(e)).on('stage', (e) => events.push(e));
  await startFlow(t, flow, nodeOptions);

  const id = await flow.createJob({ order: 'o-1', items: [1, 2, 3, 4, 5] });
  const empty = await flow.createJob({ order: 'o-2', items: [] });
  await until('both completed', async () => events.filter((e) => e.type === 'completed').length === 2, 30_000, 50);
  t.deepEqual(sums.sort(), [id, empty].sort(), 'the next stage ran once per job, after its children');

  const [job] = await flow.getJobsByKey('order', 'o-1');
  t.like(job, { id, stage: 'sum', status: 'completed', state: { order: 'o-1', lines: 5, total: 150 } });
  t.is((job!.children as Record<string, string[]>)['pack']!.length, 5, 'without resolveChildren: the ids');
  const [resolved] = await flow.getJobsByKey('order', 'o-1', true);
  const kids = (resolved!.children as Record<string, any[]>)['pack']!;
  t.deepEqual(
    kids.map((c) => [c.id, c.stage, c.status, c.params, c.state]),
    [1, 2, 3, 4, 5].map((n, i) => [
      (job!.children as Record<string, string[]>)['pack']![i],
      'pack',
      'completed',
      { n },
      { n, packed: n * 10 },
    ]),
    'the child jobs themselves, in element order, each with its own slice',
  );
  const [none] = await flow.getJobsByKey('order', 'o-2', true);
  t.like(none, { status: 'completed', state: { lines: 0, total: 0 } });
  const childStages = events.filter((e) => e.type === 'stage' && e.parentId === id);
  t.is(childStages.length, 5, 'a stage event per child, naming its parent');
  const entered = (
    await db.pool.query(`SELECT activity, entered FROM "${db.schema}".wf_activities WHERE workflow_id = $1 ORDER BY seq`, [id])
  ).rows;
  t.deepEqual(
    entered.map((r) => `${r.activity}:${r.entered}`),
    ['t:1', 'q_split:1', 'f_split_0:1', 'q_sum:1'],
  );
});

test.serial('cancelling a parent stops its children; a stage out of attempts fails the flow naming the stage', async (t) => {
  const { db, nodeOptions } = await flowEnv(t, 'flow_cancel');
  const flow = defineFlow<Record<string, unknown>, { kind: string; n: number }, 'kind'>({
    name: 'fragile',
    queues: [
      { name: 'fan', nextQueue: 'end', children: [{ queue: 'slow' }], lookupAttributes: ['kind'] },
      { name: 'slow', maxAttempts: 1 },
      { name: 'end' },
    ],
  });
  const aborted: string[] = [];
  flow.createParentWorkers('fan', (job) => Array.from({ length: job.params.n }, (_, i) => ({ i, kind: job.params.kind })));
  flow.createChildWorkers<Record<string, unknown>, { i: number; kind: string }>(
    'slow',
    async (child) => {
      if (child.params.kind === 'broken' && child.params.i === 1) throw new Error('child 1 broke');
      if (child.params.kind === 'broken') return {};
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20_000);
        child.signal.addEventListener('abort', () => {
          aborted.push(child.id);
          clearTimeout(timer);
          resolve();
        });
      });
      return {};
    },
    { concurrency: 8 },
  );
  flow.createWorkers('end', () => ({ ended: true }));
  const failed: FlowEvent[] = [];
  flow.on('failed', (e) => failed.push(e));
  await startFlow(t, flow, nodeOptions);

  const id = await flow.createJob({ kind: 'slow', n: 3 });
  await until(
    'the three children run',
    async () =>
      Number(
        (await db.pool.query(`SELECT count(*) AS n FROM "${db.schema}".jobs WHERE state = 'running' AND type = 'flow.fragile.slow'`))
          .rows[0].n,
      ) === 3,
    20_000,
    50,
  );
  t.true(await flow.cancel(id));
  await until('the children were aborted', async () => aborted.length === 3, 10_000, 50);
  await until('the failed event', async () => failed.length === 1, 10_000, 50);
  t.like(failed[0], { id, cancelled: true });
  const [job] = await flow.getJobsByKey('kind', 'slow', true);
  t.like(job, { id, status: 'cancelled' });
  const kids = (job!.children as Record<string, any[]>)['slow']!;
  t.is(kids.length, 3);
  t.true(
    kids.every((c) => c.status === 'cancelled'),
    'every child interrupted',
  );
  t.false(await flow.cancel(id), 'a finished job cannot be cancelled again');

  const broken = await flow.createJob({ kind: 'broken', n: 3 });
  await until('the broken job failed', async () => failed.length === 2, 20_000, 50);
  t.like(failed[1], { id: broken, stage: 'fan', cancelled: false });
  const [b] = await flow.getJobsByKey('kind', 'broken');
  t.like(b, { status: 'failed', stage: 'fan' });
});
