/**
 * pub's `pending` and resume; scrub; expiry: finished workflows (with their activity records),
 * pending ones never resumed and early signals are removed after their time by the node's sweep,
 * in bounded batches; running workflows and `expire: -1` graphs stay.
 */
import test from 'ava';
import pg from 'pg';
import { ValidationError } from '@partita/core';
import { startNode } from '@partita/runtime';
import { freshSchema, natsUrl, tempDataDir, until } from '../../../test/helpers/index.js';
import { DuplicateWorkflowError, INTERRUPTED, PENDING, WorkflowNotFoundError, app, workflowsPlugin } from '../src/index.js';
import { wfOps } from '../src/db.js';
import { removeExpired } from '../src/expiry.js';

const APP = `
app:
  id: keep
  version: '1'
  graphs:
    - subscribes: e.start
      expire: 1
      activities:
        t1: { type: trigger }
        pass: { type: hook, job: { maps: { n: '{t1.output.data.n}' } } }
      transitions:
        t1: [{ to: pass }]
    - subscribes: f.start
      expire: -1
      activities:
        t1: { type: trigger }
      transitions: {}
    - subscribes: w.start
      expire: 1
      activities:
        t1: { type: trigger }
        wait: { type: hook, job: { maps: { got: '{wait.output.data.msg}' } } }
      transitions:
        t1: [{ to: wait }]
      hooks:
        w.go:
          - to: wait
            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }
`;

async function setup(t: import('ava').ExecutionContext, expiryIntervalMs?: number) {
  const db = await freshSchema('wf_keep');
  const node = await startNode({
    postgres: db.url,
    schema: db.schema,
    nats: await natsUrl(),
    cluster: db.schema.replaceAll('_', '-'),
    dataDir: tempDataDir('wf-keep'),
    persister: 'postgres',
    partitions: { default: { queues: { default: { concurrency: 2 } } } },
    engine: { pollMs: 100 },
    plugins: [workflowsPlugin(expiryIntervalMs ? { expiryIntervalMs } : {})],
  });
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  t.teardown(async () => {
    await pool.end();
    await node.stop();
    await db.drop();
  });
  const keep = app(node.client, 'keep');
  await keep.deploy(APP);
  await keep.activate('1');
  const count = async (table: string, ids: string[]) =>
    Number((await pool.query(`SELECT count(*) FROM ${db.schema}.${table} WHERE workflow_id = ANY($1)`, [ids])).rows[0].count);
  const signals = async () => Number((await pool.query(`SELECT count(*) FROM ${db.schema}.wf_signals`)).rows[0].count);
  return { db, node, pool, keep, count, signals };
}

test.serial('pending: held at status -1 until resume, on its data; resumed once; bad pending refused', async (t) => {
  const { keep } = await setup(t);
  const id = await keep.pub('w.start', {}, { pending: 30 });
  t.is(await keep.getStatus(id), PENDING);
  t.deepEqual(
    (await keep.export(id)).activities.map((a) => [a.activity, a.state]),
    [['t1', 'pending']],
  );
  // A hook for it while it is held is kept, and delivered once it waits.
  t.is(await keep.hook('w.go', { id, msg: 'early' }), undefined);
  t.true(await keep.resume(id));
  t.is(await keep.getStatus(id), 0);
  t.is((await keep.getState('w.start', id)).data['got'], 'early');
  t.false(await keep.resume(id));
  t.false(await keep.resume('no-such-workflow'));
  const held = await keep.pub('e.start', { n: 7 }, { pending: 30 });
  t.true(await keep.resume(held));
  t.is((await keep.getState('e.start', held)).data['n'], 7);
  t.deepEqual(
    (await keep.export(held)).activities.map((a) => [a.activity, a.state]),
    [
      ['t1', 'done'],
      ['pass', 'done'],
    ],
  );
  // A pending workflow may be interrupted; it is then not resumed.
  const dropped = await keep.pub('e.start', { n: 1 }, { pending: 30 });
  t.true(await keep.interrupt('e.start', dropped, { reason: 'not wanted' }));
  t.is(await keep.getStatus(dropped), INTERRUPTED);
  t.false(await keep.resume(dropped));
  // A held workflow's id is taken for pub, held or not, as a started one's is; the holder is untouched.
  const taken = await keep.pub('e.start', { n: 2 }, { pending: 30 });
  await t.throwsAsync(keep.pub('e.start', { n: 3 }, { id: taken }), { instanceOf: DuplicateWorkflowError });
  await t.throwsAsync(keep.pub('e.start', { n: 3 }, { id: taken, pending: 30 }), { instanceOf: DuplicateWorkflowError });
  await t.throwsAsync(keep.pub('e.start', { n: 3 }, { id: held, pending: 30 }), { instanceOf: DuplicateWorkflowError });
  t.is(await keep.getStatus(taken), PENDING);
  t.true(await keep.resume(taken));
  t.is((await keep.getState('e.start', taken)).data['n'], 2);
  const bad = await t.throwsAsync(keep.pub('e.start', {}, { pending: -1 }), { instanceOf: ValidationError });
  t.is(bad?.path, 'pending');
});

test.serial('scrub removes a finished or pending workflow and its records now; a running one is refused', async (t) => {
  const { keep, count } = await setup(t);
  const done = await keep.pub('f.start', {});
  const running = await keep.pub('w.start', {});
  const pending = await keep.pub('e.start', {}, { pending: 30 });
  await keep.scrub(done);
  await t.throwsAsync(keep.getStatus(done), { instanceOf: WorkflowNotFoundError });
  t.is(await count('wf_activities', [done]), 0);
  await keep.scrub(pending);
  await t.throwsAsync(keep.getStatus(pending), { instanceOf: WorkflowNotFoundError });
  await t.throwsAsync(keep.scrub(running), { instanceOf: ValidationError, message: /interrupt/ });
  t.true((await keep.getStatus(running)) > 0);
  t.true(await keep.interrupt('w.start', running));
  await keep.scrub(running);
  t.is(await count('wf_hooks', [running]), 0);
  await keep.scrub('no-such-workflow');
});

test.serial(
  'expiry: past their time, finished and unresumed pending workflows (with records) and early signals go, in batches',
  async (t) => {
    // The node's own sweep stays out of the way: this test counts what each sweep removes.
    const { db, pool, keep, count, signals } = await setup(t, 3_600_000);
    const finished = await Promise.all([1, 2, 3, 4, 5].map((n) => keep.pub('e.start', { n })));
    const forever = await keep.pub('f.start', {});
    const running = await keep.pub('w.start', {});
    const unresumed = await keep.pub('e.start', {}, { pending: 1 });
    t.is(await keep.hook('w.go', { id: 'not-yet-started', msg: 'kept' }), undefined);
    t.is(await signals(), 1);
    t.is(await count('wf_activities', finished), 10);
    await new Promise((r) => setTimeout(r, 1_200));
    t.false(await keep.resume(unresumed), 'a pending workflow past its time is not resumed');

    // Batches of 2: the six expired workflows take three full batches and a short one.
    const removed = await removeExpired(pool, wfOps(db.schema), { batch: 2, maxBatches: 10 });
    t.deepEqual(removed, { workflows: 6, signals: 1 });
    for (const id of [...finished, unresumed]) await t.throwsAsync(keep.getStatus(id), { instanceOf: WorkflowNotFoundError });
    t.is(await count('wf_activities', [...finished, unresumed]), 0);
    t.is(await signals(), 0);
    t.is(await keep.getStatus(forever), 0);
    t.true((await keep.getStatus(running)) > 0);

    // maxBatches bounds one sweep: the rest waits for the next.
    const more = await Promise.all([1, 2, 3, 4, 5].map((n) => keep.pub('e.start', { n })));
    await new Promise((r) => setTimeout(r, 1_200));
    t.deepEqual(await removeExpired(pool, wfOps(db.schema), { batch: 2, maxBatches: 1 }), { workflows: 2, signals: 0 });
    t.deepEqual(await removeExpired(pool, wfOps(db.schema), { batch: 2, maxBatches: 10 }), { workflows: 3, signals: 0 });
    t.is(await count('wf_activities', more), 0);
  },
);

test.serial('the node sweeps by itself', async (t) => {
  const { keep } = await setup(t, 200);
  const id = await keep.pub('e.start', { n: 1 });
  t.is(await keep.getStatus(id), 0);
  await until(
    'removed by the sweep',
    async () =>
      keep.getStatus(id).then(
        () => false,
        (err) => err instanceof WorkflowNotFoundError,
      ),
    10_000,
  );
  t.pass();
});
