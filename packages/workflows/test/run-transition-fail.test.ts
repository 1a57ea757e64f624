/**
 * A transition that throws for good ends its workflow as failed, naming the activity, instead of
 * leaving it running: a job map whose function throws, a next step aimed at a queue no node
 * declares (a YAML app), and a flow whose next stage has no workers on any node (its queue is
 * declared nowhere). Workflows of the same batch whose transitions are fine go on.
 */
import test from 'ava';
import { silentLogger } from '@partita/core';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { FAILED, app, defineFlow } from '../src/index.js';
import { flowEnv, startFlow } from './flows-helpers.js';
import { workflowNode } from './helpers.js';

const APP = `
app:
  id: tfail
  version: '1'
  graphs:
    - subscribes: tf.start
      activities:
        t1: { type: trigger }
        work:
          type: worker
          topic: tf.work
          input: { maps: { when: '{t1.output.data.when}' } }
          job:
            maps:
              hour: { '@pipe': [['{work.output.data.when}'], ['{@date.getUTCHours}']] }
        after:
          type: worker
          topic: tf.work
          input: { maps: { when: '{t1.output.data.when}' } }
        lost:
          type: worker
          topic: tf.ghost
          queue: nowhere
      transitions:
        t1: [{ to: work }]
        work:
          - { to: after, conditions: { match: [{ expected: true, actual: '{t1.output.data.ok}' }] } }
          - { to: lost, conditions: { match: [{ expected: true, actual: '{t1.output.data.lost}' }] } }
`;

test.serial('YAML: a throwing job map and a step aimed at an undeclared queue fail the workflow, naming the activity', async (t) => {
  const { db, node } = await workflowNode(t, 'wf_tfail', {
    concurrency: 8,
    pollMs: 50,
    logger: silentLogger(),
    jobs: [defineJob<{ when: unknown }>({ type: 'tf.work', perform: (p) => ({ when: p.when }) })],
    stopGraceMs: 100,
  });
  const wf = app(node.client, 'tfail');
  await wf.deploy(APP);
  await wf.activate('1');

  // Published together so that their steps' outcomes tend to share a batch (and a transaction).
  const [badMap, lost, ...fine] = await Promise.all([
    wf.pub('tf.start', { when: 'not a date', ok: true }),
    wf.pub('tf.start', { when: '2026-12-06T10:00:00Z', lost: true }),
    ...Array.from({ length: 6 }, () => wf.pub('tf.start', { when: '2026-12-06T10:00:00Z', ok: true })),
  ]);
  await until(
    'every workflow ended',
    async () => {
      const statuses = await Promise.all([badMap!, lost!, ...fine].map((id) => wf.getStatus(id)));
      return statuses.every((s) => s <= 0);
    },
    20_000,
    50,
  );
  const s = `"${db.schema}"`;
  const row = async (id: string) =>
    (await db.pool.query(`SELECT status, output FROM ${s}.wf_workflows WHERE id = $1`, [id])).rows[0] as {
      status: string;
      output: { activity: string; error: { name: string; message: string; activity: string } };
    };
  const a = await row(badMap!);
  t.is(Number(a.status), FAILED);
  t.is(a.output.activity, 'work');
  t.is(a.output.error.name, 'TransitionError');
  t.regex(a.output.error.message, /the transition after activity work failed: .*not a date/);
  const b = await row(lost!);
  t.is(Number(b.status), FAILED);
  t.is(b.output.activity, 'work');
  t.regex(b.output.error.message, /the transition after activity work failed: .*queue "nowhere" is not declared/);
  for (const id of fine) t.is(await wf.getStatus(id), 0, `${id} completed`);
});

test.serial('flow: a next stage whose queue no node declares fails the flow job at the stage before, with an event', async (t) => {
  const { nodeOptions } = await flowEnv(t, 'flow_tfail');
  const flow = defineFlow<{ a?: number }, { n: number }, 'n'>({
    name: 'tfail',
    queues: [{ name: 'first', nextQueue: 'orphan', lookupAttributes: ['n'] }, { name: 'orphan' }],
  });
  flow.createWorkers('first', () => ({ a: 1 }));
  const failed: { id: string; stage: string | undefined; error: unknown }[] = [];
  flow.on('failed', (e) => failed.push(e));
  await startFlow(t, flow, { ...nodeOptions, logger: silentLogger() });
  const id = await flow.createJob({ n: 1 });
  await until('the flow job ended', async () => (await flow.getJobsByKey('n', 1))[0]?.status === 'failed', 20_000, 50);
  const [job] = await flow.getJobsByKey('n', 1);
  t.like(job, { id, status: 'failed', stage: 'first' });
  t.regex(String((job!.error!.error as { message: string }).message), /transition after activity q_first failed: .*flow-tfail--orphan/);
  await until('the failed event', async () => failed.length > 0, 10_000, 50);
  t.like(failed[0], { id, stage: 'first' });
});
