/**
 * Child queues' lookup attributes and children of children: a child chain's stage may fan out in
 * turn (a child queue that is itself a parent queue), its chain goes on after its own children;
 * the lookup attributes of child queues are indexed when their parent stage creates them (in the
 * transaction of that stage's outcome) and getJobsByKey finds the child jobs like the parent's,
 * with resolveChildren their children too. A child queue reached again below itself is refused.
 */
import test from 'ava';
import { until } from '../../../test/helpers/index.js';
import { FlowDefinitionError, defineFlow, type FlowJob } from '../src/index.js';
import { flowEnv, startFlow } from './flows-helpers.js';

type Job = { order: string; total?: number };
type Params = { order: string; lines: { sku: string; parts: number[] }[] };
type Line = { sku: string; parts: number[]; sum?: number };
type Part = { partNo: string; n: number; value?: number };

test.serial('a child chain fans out to grandchildren; child and grandchild jobs are found by their lookup attributes', async (t) => {
  const { nodeOptions } = await flowEnv(t, 'flow_nested');
  const flow = defineFlow<Job, Params, 'order' | 'sku' | 'partNo' | 'tags'>({
    name: 'nested',
    queues: [
      { name: 'order', nextQueue: 'total', children: [{ queue: 'line' }], lookupAttributes: ['order'] },
      { name: 'line', nextQueue: 'lineSum', children: [{ queue: 'part' }], lookupAttributes: ['sku'] },
      { name: 'part', lookupAttributes: ['partNo'] },
      { name: 'lineSum', lookupAttributes: ['tags'] },
      { name: 'total' },
    ],
  });
  flow.createParentWorkers('order', (job) => job.params.lines.map((l) => ({ ...l, tags: [l.sku, 'line'] })));
  flow.createParentWorkers('line', (job) => (job.params as unknown as Line).parts.map((n) => ({ partNo: `p${n}`, n })));
  flow.createChildWorkers<Part, Part>('part', (child) => ({ value: child.params.n * 10 }), { concurrency: 4 });
  flow.createChildWorkers<Line, Line>('lineSum', (child) => ({
    sum: (child.children['part'] ?? []).reduce((a, c) => a + (c.state as Part).value!, 0),
  }));
  flow.createWorkers('total', (job) => ({
    total: (job.children['line'] ?? []).reduce((a, c) => a + (c.state as Line).sum!, 0),
  }));
  await startFlow(t, flow, nodeOptions);
  const id = await flow.createJob({
    order: 'o-1',
    lines: [
      { sku: 'A', parts: [1, 2] },
      { sku: 'B', parts: [3] },
    ],
  });
  await until('completed', async () => (await flow.getJobsByKey('order', 'o-1'))[0]?.status === 'completed', 30_000, 50);
  t.like((await flow.getJobsByKey('order', 'o-1'))[0], { id, stage: 'total', state: { total: 60 } });

  // A child job, found by its own queue's attribute and by its chain's later stage's (an array: one key per element).
  const [lineA] = await flow.getJobsByKey('sku', 'A');
  t.like(lineA, { status: 'completed', stage: 'lineSum', params: { sku: 'A', parts: [1, 2] }, state: { sum: 30 } });
  t.is(lineA!.id, `${id}-f_order_0-0`);
  t.deepEqual(
    (await flow.getJobsByKey('tags', 'line'))
      .map((j) => j.params)
      .sort((a, b) => String((a as unknown as Line).sku).localeCompare((b as unknown as Line).sku)),
    [
      { sku: 'A', parts: [1, 2], tags: ['A', 'line'] },
      { sku: 'B', parts: [3], tags: ['B', 'line'] },
    ],
  );
  // A grandchild.
  const [p3] = await flow.getJobsByKey('partNo', 'p3');
  t.like(p3, { status: 'completed', stage: 'part', params: { partNo: 'p3', n: 3 }, state: { value: 30 } });

  // resolveChildren: the child jobs themselves, at each level, in one statement.
  const [resolved] = await flow.getJobsByKey('order', 'o-1', true);
  const lines = (resolved!.children as Record<string, FlowJob[]>)['line']!;
  t.deepEqual(
    lines.map((l) => [(l.params as unknown as Line).sku, l.stage, l.status]),
    [
      ['A', 'lineSum', 'completed'],
      ['B', 'lineSum', 'completed'],
    ],
  );
  const [lineWithParts] = await flow.getJobsByKey('sku', 'A', true);
  t.deepEqual(
    ((lineWithParts!.children as Record<string, FlowJob[]>)['part'] ?? []).map((p) => [p.params, p.state]),
    [
      [
        { partNo: 'p1', n: 1 },
        { partNo: 'p1', n: 1, value: 10 },
      ],
      [
        { partNo: 'p2', n: 2 },
        { partNo: 'p2', n: 2, value: 20 },
      ],
    ],
  );
});

test('a child queue reached again below itself is refused at definition, naming it', (t) => {
  const err = t.throws(
    () =>
      defineFlow({
        name: 'loop',
        queues: [
          { name: 'a', children: [{ queue: 'b' }] },
          { name: 'b', children: [{ queue: 'c' }] },
          { name: 'c', children: [{ queue: 'b' }] },
        ],
      }),
    { instanceOf: FlowDefinitionError },
  );
  t.regex(err!.message, /child queue b is reached again from its own children/);
});
