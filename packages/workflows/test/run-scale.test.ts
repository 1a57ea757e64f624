/**
 * Sizes that run in seconds: a cycle of many passes (each its own dimension, one worker job per
 * pass), and a fan-out of child workflows awaited by one parent with a fan-in after them.
 */
import test from 'ava';
import { defineJob, type PartitaNode } from '@partita/runtime';
import { until, type TestSchema } from '../../../test/helpers/index.js';
import { app } from '../src/index.js';
import { workflowNode } from './helpers.js';

async function node(t: import('ava').ExecutionContext, name: string): Promise<{ db: TestSchema; node: PartitaNode }> {
  const { db, node: n } = await workflowNode(t, name, {
    concurrency: 16,
    jobs: [defineJob<{ i?: number }>({ type: 'tick', perform: (p) => ({ i: p.i ?? null }) })],
  });
  return { db, node: n };
}

test.serial('a cycle of 1,000 passes: one worker job and one dimension per pass, the counter ends at 1,000', async (t) => {
  const PASSES = 1000;
  const { db, node: n } = await node(t, 'wf_cycle');
  const loop = app(n.client, 'loop');
  await loop.deploy(
    [
      'app:',
      '  id: loop',
      "  version: '1'",
      '  graphs:',
      '    - subscribes: loop.start',
      '      activities:',
      '        t1: { type: trigger }',
      '        top: { type: hook, cycle: true }',
      "        tick: { type: worker, topic: tick, job: { maps: { n: { '@pipe': [['{$job.data.n}', 0], ['{@conditional.nullish}'], ['{@math.add}', 1]] } } } }",
      '        again: { type: cycle, ancestor: top }',
      '      transitions:',
      '        t1: [{ to: top }]',
      '        top: [{ to: tick }]',
      "        tick: [{ to: again, conditions: { match: [{ expected: true, actual: { '@pipe': [['{$job.data.n}', '{t1.output.data.passes}'], ['{@number.lt}']] } }] } }]",
      '',
    ].join('\n'),
  );
  await loop.activate('1');
  const started = Date.now();
  const out = (await loop.pubsub('loop.start', { passes: PASSES }, { timeoutMs: 120_000 })) as { n: number };
  t.log(`${PASSES} passes in ${Date.now() - started} ms`);
  t.is(out.n, PASSES);
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS n, count(DISTINCT dimension)::int AS dims, max(entered) AS most FROM "${db.schema}".wf_activities WHERE activity = 'tick'`,
  );
  t.deepEqual(rows[0], { n: PASSES, dims: PASSES, most: 1 });
});

test.serial('a fan-out of 1,000 child workflows awaited in parallel, then a fan-in that runs once after the last', async (t) => {
  const K = 1000;
  const { db, node: n } = await node(t, 'wf_fanout');
  const fan = app(n.client, 'fan');
  const ids = Array.from({ length: K }, (_, i) => `c${i}`);
  await fan.deploy(
    [
      'app:',
      '  id: fan',
      "  version: '1'",
      '  graphs:',
      '    - subscribes: fan.start',
      '      activities:',
      '        t1: { type: trigger }',
      ...ids.map(
        (c, i) =>
          `        ${c}: { type: await, topic: fan.child, input: { maps: { i: ${i} } }, job: { maps: { ${c}: '{$self.output.data.i}' } } }`,
      ),
      '        join: { type: hook, job: { maps: { joined: true } } }',
      '      transitions:',
      `        t1: [${ids.map((c) => `{ to: ${c} }`).join(', ')}]`,
      ...ids.map((c) => `        ${c}: [{ to: join }]`),
      '    - subscribes: fan.child',
      '      activities:',
      '        t1: { type: trigger }',
      "        work: { type: worker, topic: tick, input: { maps: { i: '{t1.output.data.i}' } }, job: { maps: { i: '{$self.output.data.i}' } } }",
      '      transitions:',
      '        t1: [{ to: work }]',
      '',
    ].join('\n'),
  );
  await fan.activate('1');
  const started = Date.now();
  const id = await fan.pub('fan.start', {});
  await until('the parent finished', async () => (await fan.getStatus(id)) === 0, 60_000);
  t.log(`${K} children in ${Date.now() - started} ms`);
  const data = (await fan.getState('fan.start', id)).data;
  t.is(data['joined'], true);
  for (let i = 0; i < K; i++) t.is(data[`c${i}`], i);
  const { rows } = await db.pool.query(`SELECT entered FROM "${db.schema}".wf_activities WHERE workflow_id = $1 AND activity = 'join'`, [
    id,
  ]);
  t.deepEqual(rows, [{ entered: 1 }], 'the fan-in ran once');
  const children = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".wf_workflows WHERE parent_id = $1 AND status = 0`, [
    id,
  ]);
  t.is(children.rows[0].n, K);
});
