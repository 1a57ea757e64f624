/**
 * Concurrent pubs are written together (group commit): many at once all start and finish, and one
 * with a taken id among them fails alone with DuplicateWorkflowError.
 */
import test from 'ava';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { app, DuplicateWorkflowError } from '../src/index.js';
import { workflowNode } from './helpers.js';

test.serial('300 concurrent pubs, one with a taken id: that one fails with DuplicateWorkflowError, the others run once each', async (t) => {
  const { db, node } = await workflowNode(t, 'wf_pub', {
    concurrency: 16,
    jobs: [defineJob<{ i: number }>({ type: 'tick', perform: (p) => ({ i: p.i }) })],
  });
  const pubs = app(node.client, 'pubs');
  await pubs.deploy(
    [
      'app:',
      '  id: pubs',
      "  version: '1'",
      '  graphs:',
      '    - subscribes: pubs.start',
      '      activities:',
      '        t1: { type: trigger }',
      "        s1: { type: worker, topic: tick, input: { maps: { i: '{t1.output.data.i}' } }, job: { maps: { i: '{$self.output.data.i}' } } }",
      '      transitions:',
      '        t1: [{ to: s1 }]',
      '',
    ].join('\n'),
  );
  await pubs.activate('1');
  await pubs.pub('pubs.start', { i: -1 }, { id: 'taken' });
  await t.throwsAsync(pubs.pub('pubs.start', { i: -1 }, { id: 'taken' }), { instanceOf: DuplicateWorkflowError });

  const N = 300;
  const outcomes = await Promise.allSettled(
    Array.from({ length: N }, (_, i) => pubs.pub('pubs.start', { i }, { id: i === 150 ? 'taken' : `p${i}` })),
  );
  const rejected = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ i, err: o.reason as unknown }] : []));
  t.is(rejected.length, 1);
  t.is(rejected[0]!.i, 150);
  t.true(rejected[0]!.err instanceof DuplicateWorkflowError);

  const count = async (sql: string) => Number((await db.pool.query(sql)).rows[0].n);
  await until(
    'every workflow finished',
    async () => (await count(`SELECT count(*) AS n FROM "${db.schema}".wf_workflows WHERE status = 0`)) === N,
    40_000,
    100,
  );
  const rows = (await db.pool.query(`SELECT id, data FROM "${db.schema}".wf_workflows WHERE id <> 'taken'`)).rows;
  t.true(rows.every((r: { id: string; data: { i: number } }) => `p${r.data.i}` === r.id));
  // Each step completed once (its record is its history: a completed step's job has no history row).
  t.is(await count(`SELECT count(DISTINCT job_id) AS n FROM "${db.schema}".wf_activities WHERE type = 'worker' AND state = 'done'`), N);
  t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE type = 'tick'`), 0);
});

test.serial("an id taken in another day's partition or carried out of its day is refused, pending or not", async (t) => {
  const { db, node } = await workflowNode(t, 'wf_pub_days', { concurrency: 4, jobs: [defineJob({ type: 'tick', perform: () => ({}) })] });
  const days = app(node.client, 'days');
  await days.deploy(
    [
      'app:',
      '  id: days',
      "  version: '1'",
      '  graphs:',
      '    - subscribes: days.start',
      '      activities:',
      '        t1: { type: trigger }',
      '        s1: { type: worker, topic: tick }',
      '      transitions:',
      '        t1: [{ to: s1 }]',
      '',
    ].join('\n'),
  );
  await days.activate('1');
  const s = `"${db.schema}"`;
  // Yesterday's partition, and a workflow moved there (as if it started yesterday) and one carried out of its day.
  await db.pool.query(`SELECT ${s}.make_wf_day((now() AT TIME ZONE 'UTC')::date - 1)`);
  for (const [id, day] of [
    ['yesterday', `(now() AT TIME ZONE 'UTC')::date - 1`],
    ['carried', `'infinity'::date`],
  ] as const) {
    await days.pub('days.start', {}, { id });
    await until('it finished', async () => (await days.getStatus(id)) === 0, 20_000, 50);
    await db.pool.query(`UPDATE ${s}.wf_activities SET start_day = ${day} WHERE workflow_id = $1`, [id]);
    await db.pool.query(`UPDATE ${s}.wf_workflows SET start_day = ${day} WHERE id = $1`, [id]);
    await t.throwsAsync(days.pub('days.start', {}, { id }), { instanceOf: DuplicateWorkflowError }, id);
    await t.throwsAsync(days.pub('days.start', {}, { id, pending: 30 }), { instanceOf: DuplicateWorkflowError }, `${id}, pending`);
    t.is(Number((await db.pool.query(`SELECT count(*) AS n FROM ${s}.wf_workflows WHERE id = $1`, [id])).rows[0].n), 1);
  }
});
