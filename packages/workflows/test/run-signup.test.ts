/**
 * The signup example end to end on a real node (Postgres, NATS): deploy + activate, a low-risk
 * signup, a risky one answered by a hook, a hook sent before the workflow waits, the pro plan's
 * reminder child with three passes, interrupt with descend, and input refused by the schema.
 */
import test from 'ava';
import { cp, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ValidationError } from '@partita/core';
import { defineJob, type PartitaNode } from '@partita/runtime';
import { until, type TestSchema } from '../../../test/helpers/index.js';
import { INTERRUPTED, UnknownTopicError, VersionConflictError, app, type WorkflowApp } from '../src/index.js';
import { appDir, workflowNode } from './helpers.js';

const FIXTURE = new URL('./fixtures/signup/', import.meta.url);

interface Ctx {
  db: TestSchema;
  node: PartitaNode;
  signup: WorkflowApp;
  dir: string;
  risk: Map<string, number>;
  sent: string[];
  /** Sends to these addresses wait until the test ends (a child that stays open). */
  held: Set<string>;
}

async function setup(t: import('ava').ExecutionContext, name: string): Promise<Ctx> {
  const dir = await appDir(t, {});
  await cp(FIXTURE, dir, { recursive: true });
  const risk = new Map<string, number>();
  const sent: string[] = [];
  const held = new Set<string>();
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  const { db, node } = await workflowNode(t, name, {
    concurrency: 8,
    jobs: [
      defineJob<{ email: string }, { risk: number }>({ type: 'user.score', perform: (p) => ({ risk: risk.get(p.email) ?? 10 }) }),
      defineJob<{ email: string }>({
        type: 'user.remind.send',
        perform: async (p) => {
          if (held.has(p.email)) await released;
          sent.push(p.email);
          return { ok: true };
        },
      }),
    ],
  });
  t.teardown(() => release());
  const signup = app(node.client, 'signup');
  await signup.deploy(join(dir, 'app.yaml'));
  await signup.activate('1');
  return { db, node, signup, dir, risk, sent, held };
}

test.serial('deploy writes the compiled JSON; the same version with other content is refused, the same content is a no-op', async (t) => {
  const c = await setup(t, 'wf_deploy');
  t.true((await readdir(c.dir)).includes('.partita.signup.1.json'));
  t.deepEqual(await c.signup.deploy(join(c.dir, 'app.yaml')), { id: 'signup', version: '1' });
  const yaml = [
    'app:',
    '  id: signup',
    "  version: '1'",
    '  graphs:',
    '    - subscribes: other',
    '      activities:',
    '        t1: { type: trigger }',
    '',
  ].join('\n');
  await t.throwsAsync(c.signup.deploy(yaml), { instanceOf: VersionConflictError });
  await t.throwsAsync(c.signup.pub('no.such.topic', {}), { instanceOf: UnknownTopicError });
});

test.serial('low risk: score → cool (1 s sleep) → done; data, status 0, the output reaches sub', async (t) => {
  const c = await setup(t, 'wf_low');
  const outputs: unknown[] = [];
  const unsub = await c.signup.sub('user.ready', (data) => outputs.push(data));
  t.teardown(unsub);
  const started = Date.now();
  const id = await c.signup.pub('user.signup', { email: 'a@x.io', plan: 'free' });
  await until('the workflow finished', async () => (await c.signup.getStatus(id)) === 0, 15_000);
  t.true(Date.now() - started >= 1000, 'the cool sleep lasted a second');
  t.deepEqual((await c.signup.getState('user.signup', id)).data, { risk: 10, email: 'a@x.io', plan: 'free' });
  await until('sub got the output', async () => outputs.length > 0, 20_000);
  t.deepEqual(outputs[0], { risk: 10, email: 'a@x.io', plan: 'free' });
  const timeline = await c.signup.export(id);
  t.deepEqual(
    timeline.activities.map((a) => a.activity),
    ['t1', 'score', 'cool', 'done'],
  );
  t.true(timeline.activities.every((a) => a.entered === 1 && a.state === 'done'));
  t.deepEqual(await c.signup.pubsub('user.signup', { email: 'b@x.io', plan: 'free' }, { timeoutMs: 15_000 }), {
    risk: 10,
    email: 'b@x.io',
    plan: 'free',
  });
});

test.serial('high risk waits at review until hook(); a hook sent before the workflow waits is kept and delivered', async (t) => {
  const c = await setup(t, 'wf_hook');
  c.risk.set('r@x.io', 80);
  const id = await c.signup.pub('user.signup', { email: 'r@x.io', plan: 'free' });
  await until('waiting at review', async () =>
    (await c.signup.export(id)).activities.some((a) => a.activity === 'review' && a.state === 'waiting'),
  );
  t.true((await c.signup.getStatus(id)) > 0);
  t.is(await c.signup.hook('user.reviewed', { id, approved: true }), id);
  await until('finished after the review', async () => (await c.signup.getStatus(id)) === 0, 15_000);
  t.deepEqual((await c.signup.getState('user.signup', id)).data, { risk: 80, approved: true, email: 'r@x.io', plan: 'free' });

  // Early: the hook arrives before score has even run (the signal is kept, then taken at review).
  c.risk.set('e@x.io', 90);
  const early = 'early-1';
  t.is(await c.signup.hook('user.reviewed', { id: early, approved: true }), undefined);
  await c.signup.pub('user.signup', { email: 'e@x.io', plan: 'free' }, { id: early });
  await until('the early hook was delivered', async () => (await c.signup.getStatus(early)) === 0, 15_000);
  t.is((await c.signup.getState('user.signup', early)).data['approved'], true);
  t.is(Number((await c.db.pool.query(`SELECT count(*) AS n FROM "${c.db.schema}".wf_signals`)).rows[0].n), 0, 'the signal was taken');
});

test.serial('pro plan: the reminder child sends three times, each pass in its own dimension; the parent gets reminded: 3', async (t) => {
  const c = await setup(t, 'wf_pro');
  const id = await c.signup.pub('user.signup', { email: 'p@x.io', plan: 'pro' });
  await until('finished with the child', async () => (await c.signup.getStatus(id)) === 0, 20_000);
  t.is((await c.signup.getState('user.signup', id)).data['reminded'], 3);
  t.deepEqual(c.sent, ['p@x.io', 'p@x.io', 'p@x.io']);
  const [child] = (await c.db.pool.query(`SELECT id FROM "${c.db.schema}".wf_workflows WHERE parent_id = $1`, [id])).rows;
  const sends = (await c.signup.export(child.id)).activities.filter((a) => a.activity === 'send');
  t.deepEqual(sends.map((a) => a.dimension).sort(), ['', '/1', '/2']);
});

test.serial(
  'interrupt while waiting at review: status −1e9, the child too with descend; interrupting a finished workflow is false',
  async (t) => {
    const c = await setup(t, 'wf_interrupt');
    c.risk.set('i@x.io', 99);
    const id = await c.signup.pub('user.signup', { email: 'i@x.io', plan: 'pro' });
    await until('waiting at review', async () =>
      (await c.signup.export(id)).activities.some((a) => a.activity === 'review' && a.state === 'waiting'),
    );
    t.true(await c.signup.interrupt('user.signup', id, { descend: true }));
    t.is(await c.signup.getStatus(id), INTERRUPTED);
    t.false(await c.signup.interrupt('user.signup', id));
    t.is(await c.signup.hook('user.reviewed', { id, approved: true }), undefined, 'no longer waiting');

    // A parent waiting on its child (an await, whose send is held): descend interrupts the child as well.
    c.held.add('j@x.io');
    const pro = await c.signup.pub('user.signup', { email: 'j@x.io', plan: 'pro' });
    const childOf = async () =>
      (await c.db.pool.query(`SELECT id, status FROM "${c.db.schema}".wf_workflows WHERE parent_id = $1`, [pro])).rows[0];
    await until('the child is running', async () => (await childOf()) !== undefined, 15_000);
    t.true((await c.signup.getStatus(pro)) > 0);
    t.true(await c.signup.interrupt('user.signup', pro, { descend: true }));
    t.is(await c.signup.getStatus(pro), INTERRUPTED);
    t.is(Number((await childOf()).status), INTERRUPTED, 'the child was interrupted too');
    t.is(Number((await c.db.pool.query(`SELECT count(*) AS n FROM "${c.db.schema}".wf_hooks`)).rows[0].n), 0, 'no hook left waiting');
  },
);

test.serial('input without a plan is refused with a ValidationError naming plan', async (t) => {
  const c = await setup(t, 'wf_invalid');
  const err = await t.throwsAsync(c.signup.pub('user.signup', { email: 'a@x.io' }), { instanceOf: ValidationError });
  t.is(err?.path, 'plan');
});
