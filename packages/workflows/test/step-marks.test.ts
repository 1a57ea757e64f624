/**
 * On a node running the workflows plugin, only a workflow's step jobs (its workers' and sleeps',
 * marked by the executor) go through the transition's transaction; other jobs, of the same type as a
 * worker's even, keep the plain write. Counted with partita_continued_outcomes_total.
 */
import test from 'ava';
import { defineJob, type PartitaNode } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { app } from '../src/index.js';
import { workflowNode } from './helpers.js';

const APP = `
app:
  id: marks
  version: '1'
  graphs:
    - subscribes: marks.start
      activities:
        t1: { type: trigger }
        w1: { type: worker, topic: noop }
        nap: { type: hook, sleep: 1 }
        w2: { type: worker, topic: noop }
      transitions:
        t1: [{ to: w1 }]
        w1: [{ to: nap }]
        nap: [{ to: w2 }]
`;

async function continuedOutcomes(node: PartitaNode): Promise<number> {
  const metric = node.metrics.registry.getSingleMetric('partita_continued_outcomes_total');
  if (!metric) throw new Error('partita_continued_outcomes_total is not registered');
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

test.serial('plain jobs on a workflows node take the plain write; each step job reaches the transition once', async (t) => {
  const { db, node } = await workflowNode(t, 'wf_marks', {
    concurrency: 8,
    pollMs: 50,
    jobs: [defineJob({ type: 'noop', perform: () => null })],
  });
  const count = async (sql: string) => Number((await db.pool.query(sql)).rows[0].n);
  const completed = () => count(`SELECT count(*) AS n FROM "${db.schema}".jobs_history WHERE state = 'completed'`);

  const PLAIN = 50;
  await node.client.enqueueMany(
    'default',
    Array.from({ length: PLAIN }, () => ({ type: 'noop' })),
  );
  await until('the plain jobs completed', async () => (await completed()) === PLAIN, 30_000);
  t.is(await continuedOutcomes(node), 0, 'no plain job went through a continuation transaction');

  const marks = app(node.client, 'marks');
  await marks.deploy(APP);
  await marks.activate('1');
  const N = 4;
  const ids = await Promise.all(Array.from({ length: N }, () => marks.pub('marks.start', {})));
  await until(
    'every workflow finished',
    async () => (await Promise.all(ids.map((id) => marks.getStatus(id)))).every((s) => s === 0),
    30_000,
  );
  t.is(await continuedOutcomes(node), 3 * N, 'two workers and one sleep per workflow, each outcome written with its transition');
  t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".wf_activities WHERE entered <> 1 OR state <> 'done'`), 0);
});

const FAILING_APP = `
app:
  id: hist
  version: '1'
  graphs:
    - subscribes: hist.start
      activities:
        t1: { type: trigger }
        w1: { type: worker, topic: fine }
        w2: { type: worker, topic: broken, retry: { maximumAttempts: 1 } }
      transitions:
        t1: [{ to: w1 }]
        w1: [{ to: w2 }]
`;

test.serial(
  "a completed step's job leaves no history row (its activity record is its history); a failed step's does; a plain job's does",
  async (t) => {
    const { db, node } = await workflowNode(t, 'wf_hist', {
      concurrency: 8,
      pollMs: 50,
      jobs: [
        defineJob({ type: 'fine', perform: () => ({ fine: true }) }),
        defineJob({
          type: 'broken',
          perform: () => {
            throw new Error('broken on purpose');
          },
        }),
      ],
    });
    const hist = app(node.client, 'hist');
    await hist.deploy(FAILING_APP);
    await hist.activate('1');
    const id = await hist.pub('hist.start', {});
    await until('the workflow failed at w2', async () => (await hist.getStatus(id)) === -1_000_000_001, 30_000);
    const timeline = await hist.export(id);
    const w1 = timeline.activities.find((a) => a.activity === 'w1')!;
    const w2 = timeline.activities.find((a) => a.activity === 'w2')!;
    t.truthy(w1.jobId);
    t.truthy(w2.jobId);
    t.deepEqual(w1.output, { fine: true }, "the timeline holds the completed step's output");
    t.is(w1.attempts, 1);
    t.truthy(w1.finishedAt);
    const historyOf = async (jobId: string) =>
      (await db.pool.query(`SELECT state FROM "${db.schema}".jobs_history WHERE id = $1`, [jobId])).rows.map((r) => r.state as string);
    t.deepEqual(await historyOf(w1.jobId!), [], 'no history row for the completed step');
    t.is(await node.client.job(w1.jobId!), undefined);
    t.deepEqual(await historyOf(w2.jobId!), ['failed'], 'the failed step keeps its history row');

    const plain = await node.client.enqueue('default', 'fine', {});
    t.deepEqual(await node.client.result(plain.id, { timeoutMs: 30_000 }), { fine: true });
    t.deepEqual(await historyOf(plain.id), ['completed'], 'a plain job of a worker topic keeps its row');
  },
);
