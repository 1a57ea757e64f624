/**
 * Flows on the workflow engine: a three-stage flow whose state is one record merged stage by stage,
 * lookup attributes (string, number, arrays, other types ignored) read newest first, events from the
 * bus, and the definition's checks.
 */
import test from 'ava';
import { until } from '../../../test/helpers/index.js';
import { FlowDefinitionError, FlowNotStartedError, defineFlow, lookupRows, type FlowEvent } from '../src/index.js';
import { flowEnv, startFlow } from './flows-helpers.js';

test('a definition that cannot run is refused, naming the queue', (t) => {
  const bad = (queues: any[], name = 'f') => t.throws(() => defineFlow({ name, queues }), { instanceOf: FlowDefinitionError });
  t.regex(bad([{ name: 'a', nextQueue: 'zz' }])!.message, /nextQueue zz is not one of the flow's queues/);
  t.regex(
    bad([
      { name: 'a', nextQueue: 'b' },
      { name: 'b', nextQueue: 'a' },
    ])!.message,
    /cannot loop/,
  );
  t.regex(bad([{ name: 'a' }, { name: 'b' }])!.message, /queue b is never reached/);
  t.regex(bad([{ name: 'a', children: [{ queue: 'nope' }] }])!.message, /child queue nope/);
  t.regex(bad([{ name: 'a' }, { name: 'a' }])!.message, /listed twice/);
  t.regex(bad([{ name: 'a' }], 'no spaces')!.message, /the name must be/);
  t.regex(bad([{ name: 'a.b' }])!.message, /needs a name/);
  const f = defineFlow({ name: 'f', queues: [{ name: 'a' }] });
  t.throws(() => f.createWorkers('zz', () => {}), { message: /zz is not one of its queues/ });
  t.throws(() => f.createParentWorkers('a', () => []), { message: /has no children/ });
  return t.throwsAsync(f.createJob({}), { instanceOf: FlowNotStartedError });
});

test('lookup rows: strings and numbers one key, arrays one per element, other types ignored', (t) => {
  const rows = lookupRows('f', 'j1', { a: 'x', n: 7, tags: ['p', 'q', 3, { no: 1 }, 'p'], o: { x: 1 }, b: true, nul: null }, [
    'a',
    'n',
    'tags',
    'o',
    'b',
    'nul',
    'missing',
  ]);
  t.deepEqual(
    rows.map((r) => `${r.key}=${r.value}`),
    ['a=x', 'n=7', 'tags=p', 'tags=q', 'tags=3'],
  );
});

type Job = { customer: string; tags?: string[]; validated?: boolean; priced?: number; shipped?: string; seen?: string[] };
type Params = { customer: string; tags?: unknown; amount: number };

test.serial('three stages: the state is one record each worker’s return is merged into; lookups newest first; events', async (t) => {
  const { db, nodeOptions } = await flowEnv(t, 'flow_basic');
  const flow = defineFlow<Job, Params, 'customer' | 'tags' | 'amount'>({
    name: 'orders',
    queues: [
      { name: 'validate', nextQueue: 'price', lookupAttributes: ['customer', 'tags'] },
      { name: 'price', nextQueue: 'ship', lookupAttributes: ['amount'] },
      { name: 'ship' },
    ],
  });
  flow.createWorkers('validate', (job) => ({ validated: true, seen: [job.queue] }), { concurrency: 4 });
  flow.createWorkers('price', (job) => {
    if (!job.state.validated) throw new Error('price ran before validate');
    return { priced: job.params.amount * 2, seen: [...(job.state.seen ?? []), job.queue] };
  });
  flow.createWorkers('ship', (job) => ({ shipped: `to ${job.state.customer}`, seen: [...(job.state.seen ?? []), job.queue] }));
  const events: FlowEvent[] = [];
  flow.on('completed', (e) => events.push(e)).on('stage', (e) => events.push(e));
  await startFlow(t, flow, nodeOptions);

  const first = await flow.createJob({ customer: 'ann', tags: ['vip', 'eu'], amount: 5 });
  const second = await flow.createJob({ customer: 'ann', tags: { not: 'indexed' }, amount: 6 });
  const third = await flow.createJob({ customer: 'bob', tags: ['eu'], amount: 7 });

  await until('the three jobs completed', async () => events.filter((e) => e.type === 'completed').length === 3, 30_000, 50);
  const ann = await flow.getJobsByKey('customer', 'ann');
  t.deepEqual(
    ann.map((j) => j.id),
    [second, first],
    'newest first',
  );
  t.like(ann[1], { stage: 'ship', status: 'completed', params: { customer: 'ann', tags: ['vip', 'eu'], amount: 5 } });
  t.deepEqual(ann[1]!.state, {
    customer: 'ann',
    tags: ['vip', 'eu'],
    amount: 5,
    validated: true,
    priced: 10,
    shipped: 'to ann',
    seen: ['validate', 'price', 'ship'],
  });
  t.deepEqual(ann[1]!.result, ann[1]!.state);
  t.deepEqual(
    (await flow.getJobsByKey('tags', 'eu')).map((j) => j.id),
    [third, first],
    'an array attribute: one key per element',
  );
  t.deepEqual(await flow.getJobsByKey('tags', 'indexed'), [], 'an object attribute is not indexed');
  t.deepEqual(
    (await flow.getJobsByKey('amount', 7)).map((j) => j.id),
    [third],
    'a number attribute, found by number',
  );
  t.deepEqual(
    (await flow.getJobsByKey('amount', '7')).map((j) => j.id),
    [third],
    'and by its text',
  );
  await t.throwsAsync(flow.getJobsByKey('nope' as 'customer', 'x'), { message: /not a lookup attribute/ });

  const stages = events.filter((e): e is Extract<FlowEvent, { type: 'stage' }> => e.type === 'stage' && e.id === first);
  t.deepEqual(
    stages.map((e) => e.stage),
    ['validate', 'price', 'ship'],
  );
  t.like(stages[1]!.state, { priced: 10 });
  t.like(
    events.find((e) => e.type === 'completed' && e.id === first),
    { result: { shipped: 'to ann' } },
  );
  // Each stage ran once as a transition.
  const entered = (
    await db.pool.query(`SELECT activity, entered FROM "${db.schema}".wf_activities WHERE workflow_id = $1 ORDER BY seq`, [first])
  ).rows;
  t.deepEqual(
    entered.map((r) => `${r.activity}:${r.entered}`),
    ['t:1', 'q_validate:1', 'q_price:1', 'q_ship:1'],
  );
});
