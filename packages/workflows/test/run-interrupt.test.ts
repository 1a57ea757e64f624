/**
 * interrupt: `descend` ends a whole tree of awaited children; `throw` (default) makes an awaiting
 * parent fail with the interruption's `code`, `throw: false` lets it go on with the interrupted
 * output; an interrupt activity stopping its own workflow does the same to its parent; a finished
 * (or unknown) workflow is not interrupted again (false, not an error).
 */
import test from 'ava';
import { ValidationError } from '@partita/core';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { FAILED, INTERRUPTED, WorkflowFailedError, app, type WorkflowEvent } from '../src/index.js';
import { workflowNode } from './helpers.js';

const APP = `
app:
  id: intr
  version: '1'
  graphs:
    - subscribes: p.start
      activities:
        t1: { type: trigger }
        child: { type: await, topic: c.start, input: { maps: { halt: '{t1.output.data.halt}' } } }
        after: { type: hook, job: { maps: { childOut: '{child.output.data}' } } }
      transitions:
        t1: [{ to: child }]
        child: [{ to: after }]
    - subscribes: c.start
      activities:
        t1: { type: trigger }
        quiet: { type: interrupt, throw: false, code: 299, reason: quietly }
        loud: { type: interrupt, code: 422, reason: loudly }
        wait: { type: hook }
        gc: { type: await, topic: g.start }
        deep: { type: interrupt, descend: true, reason: deep }
      transitions:
        t1:
          - to: quiet
            conditions: { match: [{ expected: quiet, actual: '{t1.output.data.halt}' }] }
          - to: loud
            conditions: { match: [{ expected: loud, actual: '{t1.output.data.halt}' }] }
          - to: wait
          - to: gc
        wait:
          - to: deep
            conditions: { match: [{ expected: deep, actual: '{t1.output.data.halt}' }] }
      hooks:
        c.go:
          - to: wait
            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }
    - subscribes: g.start
      activities:
        t1: { type: trigger }
        wait: { type: hook }
      transitions:
        t1: [{ to: wait }]
      hooks:
        g.go:
          - to: wait
            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }
`;

test.serial('interrupt: descend, throw and code, self-interrupt seen by the parent, finished → false', async (t) => {
  const { node } = await workflowNode(t, 'wf_intr', {
    concurrency: 2,
  });
  const intr = app(node.client, 'intr');
  await intr.deploy(APP);
  await intr.activate('1');
  const tree = async () => {
    const parent = await intr.pub('p.start', {});
    const child = (await intr.export(parent)).activities.find((a) => a.activity === 'child')!.jobId!;
    const grandchild = (await intr.export(child)).activities.find((a) => a.activity === 'gc')!.jobId!;
    t.true((await intr.getStatus(grandchild)) > 0);
    return { parent, child, grandchild };
  };

  // descend: the parent, its child and the child's child all end interrupted; their hooks are gone.
  const a = await tree();
  t.true(await intr.interrupt('p.start', a.parent, { descend: true, reason: 'stop all' }));
  for (const id of [a.parent, a.child, a.grandchild]) t.is(await intr.getStatus(id), INTERRUPTED, id);
  t.deepEqual((await intr.getState('c.start', a.child)).metadata.js, INTERRUPTED);
  t.is(await intr.hook('c.go', { id: a.child }), undefined);
  // Finished, and unknown: false, not an error.
  t.false(await intr.interrupt('p.start', a.parent));
  t.false(await intr.interrupt('p.start', 'no-such-workflow'));

  // Without descend, throw (default): the awaiting parent fails with the code; the grandchild runs on.
  const b = await tree();
  t.true(await intr.interrupt('c.start', b.child, { reason: 'gone', code: 499 }));
  t.is(await intr.getStatus(b.parent), FAILED);
  const failedParent = await intr.getState('p.start', b.parent);
  t.is(failedParent.metadata.js, FAILED);
  const child = (await intr.export(b.parent)).activities.find((x) => x.activity === 'child')!;
  t.is(child.state, 'failed');
  t.like(child.errors[0] as object, { code: 499, message: 'gone', interrupted: true, workflow: b.child });
  t.true((await intr.getStatus(b.grandchild)) > 0);

  // throw: false: the parent's await completes with the interrupted output and the parent finishes.
  const c = await tree();
  t.true(await intr.interrupt('c.start', c.child, { reason: 'enough', code: 299, throw: false }));
  t.is(await intr.getStatus(c.parent), 0);
  t.deepEqual((await intr.getState('p.start', c.parent)).data['childOut'], { interrupted: true, reason: 'enough', code: 299 });

  // An interrupt activity stopping its own workflow (started by the parent's await in the same transaction).
  const quiet = await intr.pubsub('p.start', { halt: 'quiet' }, { timeoutMs: 10_000 });
  t.deepEqual((quiet as Record<string, unknown>)['childOut'], { interrupted: true, reason: 'quietly', code: 299 });
  const loud = await t.throwsAsync(intr.pubsub('p.start', { halt: 'loud' }, { timeoutMs: 10_000 }), { instanceOf: WorkflowFailedError });
  t.is(loud?.status, FAILED);
  t.like((loud?.output as { error: object }).error, { code: 422, message: 'loudly', interrupted: true });

  // An interrupt activity with descend, entered after a hook (a later transaction than the one that
  // started its grandchild): both end interrupted, each publishes one output (interrupted, not
  // failed), and the parent fails with the default 410.
  const outputs: WorkflowEvent[] = [];
  const unsub = await intr.psub('>', (_data, e) => e.kind === 'output' && outputs.push(e));
  t.teardown(unsub);
  const deep = await intr.pub('p.start', { halt: 'deep' });
  const deepChildId = (await intr.export(deep)).activities.find((x) => x.activity === 'child')!.jobId!;
  t.true((await intr.getStatus(deepChildId)) > 0);
  t.is(await intr.hook('c.go', { id: deepChildId }), deepChildId);
  t.is(await intr.getStatus(deep), FAILED);
  const deepChild = (await intr.export(deep)).activities.find((x) => x.activity === 'child')!;
  t.like(deepChild.errors[0] as object, { code: 410, message: 'deep', interrupted: true, workflow: deepChild.jobId });
  const deepGrandchild = (await intr.export(deepChild.jobId!)).activities.find((x) => x.activity === 'gc')!.jobId!;
  t.is(await intr.getStatus(deepChild.jobId!), INTERRUPTED);
  t.is(await intr.getStatus(deepGrandchild), INTERRUPTED);
  await until('three outputs', () => outputs.filter((e) => [deep, deepChild.jobId, deepGrandchild].includes(e.id)).length >= 3, 10_000);
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(
    outputs
      .filter((e) => [deep, deepChild.jobId, deepGrandchild].includes(e.id))
      .map((e) => [e.id, e.status])
      .sort(),
    [
      [deep, FAILED],
      [deepChild.jobId, INTERRUPTED],
      [deepGrandchild, INTERRUPTED],
    ].sort(),
  );

  await t.throwsAsync(intr.interrupt('c.start', b.grandchild, { code: 1.5 }), { instanceOf: ValidationError });
  t.true((await intr.getStatus(b.grandchild)) > 0);
});

test.serial(
  'interrupt cancels the job of a step the workflow waits on (found through its records); scrub then leaves no step linked',
  async (t) => {
    const { node, db } = await workflowNode(t, 'wf_intr_nap', { concurrency: 2 });
    const nap = app(node.client, 'nap');
    await nap.deploy(`
app:
  id: nap
  version: '1'
  graphs:
    - subscribes: n.start
      activities:
        t1: { type: trigger }
        nap: { type: hook, sleep: 3600 }
      transitions:
        t1: [{ to: nap }]
`);
    await nap.activate('1');
    const [id, other] = [await nap.pub('n.start', {}), await nap.pub('n.start', {})];
    const jobOf = async (wf: string) => (await nap.export(wf)).activities.find((a) => a.activity === 'nap')!.jobId!;
    const [job, otherJob] = [await jobOf(id), await jobOf(other)];
    const linked = async (jobId: string) =>
      Number(
        (
          await db.pool.query(
            `SELECT count(*) AS n FROM "${db.schema}".wf_activities WHERE job_id = $1 AND state IN ('running', 'waiting')`,
            [jobId],
          )
        ).rows[0].n,
      );
    t.is(await linked(job), 1);
    t.is((await node.client.job(job))?.state, 'scheduled');
    t.true(await nap.interrupt('n.start', id));
    await until('the sleeping step is cancelled', async () => (await node.client.job(job))?.state === 'cancelled', 10_000, 50);
    // The other workflow's step is left alone.
    t.is((await node.client.job(otherJob))?.state, 'scheduled');
    t.is(await linked(otherJob), 1);
    await nap.scrub(id);
    t.is(await linked(job), 0);
  },
);

test.serial(
  'a step that succeeds after its workflow was interrupted is recorded done with its output (its job leaves no history)',
  async (t) => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let started = false;
    const { node } = await workflowNode(t, 'wf_intr_late', {
      concurrency: 2,
      jobs: [
        defineJob<{ n: number }>({
          type: 'slow',
          // Ignores the cancel the interrupt asks for: the step runs to its end after the workflow ended.
          perform: async (p) => {
            started = true;
            await released;
            return { twice: p.n * 2 };
          },
        }),
      ],
    });
    t.teardown(() => release());
    const late = app(node.client, 'late');
    await late.deploy(`
app:
  id: late
  version: '1'
  graphs:
    - subscribes: l.start
      activities:
        t1: { type: trigger }
        work: { type: worker, topic: slow, input: { maps: { n: '{t1.output.data.n}' } } }
        after: { type: hook, sleep: 1 }
      transitions:
        t1: [{ to: work }]
        work: [{ to: after }]
`);
    await late.activate('1');
    const id = await late.pub('l.start', { n: 21 });
    await until('the step runs', () => started, 10_000, 20);
    t.true(await late.interrupt('l.start', id));
    release();
    const work = async () => (await late.export(id)).activities.find((a) => a.activity === 'work')!;
    await until('the late success is recorded', async () => (await work()).state === 'done', 10_000, 50);
    t.like(await work(), { state: 'done', output: { twice: 42 }, attempts: 1 });
    // Nothing went on from it: the workflow stays interrupted and the next activity never started.
    t.is(await late.getStatus(id), INTERRUPTED);
    t.falsy((await late.export(id)).activities.find((a) => a.activity === 'after'));
  },
);
