/**
 * A stage's failures follow its queue's retry settings; out of attempts, the flow fails naming the
 * stage. A flow joins a running node ({ node }); a finished job's lookup lasts as long as its
 * workflow, and the sweep removes the rows of removed ones.
 */
import test from 'ava';
import { app } from '@partita/workflows';
import { until } from '../../../test/helpers/index.js';
import { defineFlow, sweepKeys, type FlowEvent } from '../src/index.js';
import { flowEnv, flowNode, startFlow } from './flows-helpers.js';

test.serial('retries follow the queue’s maxAttempts and backoff; out of attempts the flow fails naming the stage', async (t) => {
  const { nodeOptions } = await flowEnv(t, 'flow_retry');
  const flow = defineFlow<{ ok?: boolean }, { key: string; failures: number }, 'key'>({
    name: 'flaky',
    queues: [
      { name: 'first', nextQueue: 'second', lookupAttributes: ['key'] },
      { name: 'second', maxAttempts: 3, backoff: { baseMs: 20, maxMs: 20 } },
    ],
  });
  const attempts = new Map<string, number[]>();
  flow.createWorkers('first', () => ({}));
  flow.createWorkers('second', (job) => {
    const seen = [...(attempts.get(job.params.key) ?? []), job.attempt];
    attempts.set(job.params.key, seen);
    if (seen.length <= job.params.failures) throw new Error(`failure ${seen.length} of ${job.params.key}`);
    return { ok: true };
  });
  const events: FlowEvent[] = [];
  flow.on('failed', (e) => events.push(e)).on('completed', (e) => events.push(e));
  await startFlow(t, flow, nodeOptions);
  const recovers = await flow.createJob({ key: 'recovers', failures: 2 });
  const spent = await flow.createJob({ key: 'spent', failures: 5 });
  await until('both ended', async () => events.length === 2, 30_000, 50);
  t.deepEqual(attempts.get('recovers'), [1, 2, 3]);
  t.deepEqual(attempts.get('spent'), [1, 2, 3], 'three attempts, no more');
  t.like(
    events.find((e) => e.id === recovers),
    { type: 'completed', result: { ok: true } },
  );
  const failed = events.find((e) => e.id === spent) as Extract<FlowEvent, { type: 'failed' }>;
  t.like(failed, { type: 'failed', stage: 'second', cancelled: false });
  t.regex(JSON.stringify(failed.error), /failure 3 of spent/);
  const [job] = await flow.getJobsByKey('key', 'spent');
  t.like(job, { status: 'failed', stage: 'second', error: { stage: 'second' } });
});

test.serial(
  'startAll({ node }) joins a running node; a lookup lasts as long as the workflow, then the sweep removes its rows',
  async (t) => {
    const { db, nodeOptions } = await flowEnv(t, 'flow_join');
    const flow = defineFlow<{ done?: boolean }, { ref: string }, 'ref'>({
      name: 'joined',
      queues: [{ name: 'only', lookupAttributes: ['ref'] }],
    });
    flow.createWorkers('only', () => ({ done: true }), { concurrency: 2 });
    const node = await flowNode(t, flow, nodeOptions, {
      partitions: { default: { queues: { default: { concurrency: 2 }, ...flow.queueConfig() } } },
      jobs: flow.jobs(),
    });
    t.is(await flow.startAll({ node }), node);
    const id = await flow.createJob({ ref: 'r1' });
    await until('completed', async () => (await flow.getJobsByKey('ref', 'r1'))[0]?.status === 'completed', 20_000, 50);
    t.like((await flow.getJobsByKey('ref', 'r1'))[0], { id, state: { ref: 'r1', done: true } });
    t.is(await sweepKeys(db.pool, db.schema, 0), 0, 'nothing swept while the workflow is kept');

    await app(node.client, flow.appId).scrub(id);
    t.deepEqual(await flow.getJobsByKey('ref', 'r1'), [], 'gone with its workflow');
    t.is(await sweepKeys(db.pool, db.schema, 0), 1, 'its lookup row is swept');
    t.is(Number((await db.pool.query(`SELECT count(*) AS n FROM "${db.schema}".flow_keys`)).rows[0].n), 0);
    await flow.stopAll();
    t.is(Number((await db.pool.query(`SELECT count(*) AS n FROM "${db.schema}".wf_workflows`)).rows[0].n), 0);
  },
);
