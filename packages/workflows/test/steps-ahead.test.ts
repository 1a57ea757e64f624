/**
 * A step's lock and take go out with the completion (the continuation's prepare), in its round trip
 * rather than one of their own after its answer; and, sent before the store said whether it accepts
 * the outcome, they change nothing: a step read ahead for an outcome the store then refused stays as
 * it was, its record running with its job's id: no transition is lost or run for an outcome not recorded.
 */
import test from 'ava';
import pg from 'pg';
import { silentLogger } from '@partita/core';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { app } from '../src/index.js';
import { runOn, wfOps, type Db } from '../src/db.js';
import { Versions, finishStepJobs, newEffects, takeSteps } from '../src/executor.js';
import { workflowNode } from './helpers.js';

const APP = `
app:
  id: ahead
  version: '1'
  graphs:
    - subscribes: a.start
      activities:
        t1: { type: trigger }
        w1: { type: worker, topic: a.step }
        w2: { type: worker, topic: a.step }
        w3: { type: worker, topic: a.hold }
      transitions:
        t1: [{ to: w1 }]
        w1: [{ to: w2 }]
        w2: [{ to: w3 }]
`;

type Event = { client: object; what: 'send' | 'answer'; name: string };

test.serial("a step's lock and take are sent before its completion is answered, and a refused outcome's step stays", async (t) => {
  // Every named statement of this process, as sent and as answered, by connection.
  const events: Event[] = [];
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: pg.Client, ...args: unknown[]) {
    const name = (args[0] as { name?: string } | undefined)?.name;
    const result = original.apply(this, args);
    if (name && result instanceof Promise) {
      events.push({ client: this, what: 'send', name });
      result.then(
        () => events.push({ client: this, what: 'answer', name }),
        () => undefined,
      );
    }
    return result;
  };
  t.teardown(() => {
    (pg.Client.prototype as unknown as { query: unknown }).query = original;
  });

  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  const { db, node } = await workflowNode(t, 'wf_ahead', {
    concurrency: 2,
    pollMs: 50,
    jobs: [defineJob({ type: 'a.step', perform: () => null }), defineJob({ type: 'a.hold', perform: () => held })],
  });
  const wfs = app(node.client, 'ahead');
  await wfs.deploy(APP);
  await wfs.activate('1');
  const wf = await wfs.pub('a.start', {});
  const step = async () =>
    (
      await db.pool.query<{ job_id: string }>(
        `SELECT job_id FROM "${db.schema}".wf_activities WHERE workflow_id = $1 AND activity = 'w3'`,
        [wf],
      )
    ).rows[0]?.job_id;
  await until('w3 runs', async () => (await step()) !== undefined, 30_000, 50);

  // The transitions after w1 and w2: on each connection that completed a step, the lock and the take
  // went out before the completion's answer came back.
  const transitions = events.filter((e) => e.what === 'send' && e.name.includes('complete_batch'));
  let checked = 0;
  for (const sent of transitions) {
    const after = events.slice(events.indexOf(sent));
    const answered = after.findIndex((e) => e.client === sent.client && e.what === 'answer' && e.name === sent.name);
    const lock = after.findIndex((e) => e.client === sent.client && e.what === 'send' && e.name.includes('steps_lock'));
    const take = after.findIndex((e) => e.client === sent.client && e.what === 'send' && e.name.includes('steps_take'));
    if (lock < 0) continue; // a plain completion (the bench of another test, an emit): no transition
    t.true(lock < answered, 'steps_lock sent before complete_batch was answered');
    t.true(take < answered, 'steps_take sent before complete_batch was answered');
    checked++;
  }
  t.true(checked >= 2, `transitions seen: ${checked}`);

  // w3's job is running (live): read ahead of an outcome the store did not accept (none here), its
  // step is found by its job id, and nothing of it is taken or written: the record stays running with
  // the job's id, for the outcome that is recorded later.
  const jobId = (await step())!;
  const ops = wfOps(db.schema);
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    const txDb: Db = {
      run: (op, params) => runOn(client, ops, op, params),
      enqueue: () => Promise.reject(new Error('no enqueue expected')),
    };
    const scope = { db: txDb, versions: new Versions(async () => undefined), logger: silentLogger(), effects: newEffects() };
    const ahead = takeSteps(txDb, [jobId]);
    t.deepEqual(
      (await ahead.locking).map((r) => r.id),
      [wf],
    );
    t.deepEqual(
      (await ahead.taking).filter((r) => r.job_id === jobId).map((r) => [r.activity, r.state]),
      [['w3', 'running']],
    );
    await finishStepJobs(scope, [], ahead);
    const links = await client.query(`SELECT workflow_id, activity, state FROM "${db.schema}".wf_activities WHERE job_id = $1`, [jobId]);
    t.deepEqual(links.rows, [{ workflow_id: wf, activity: 'w3', state: 'running' }]);
    const records = await client.query(`SELECT activity, state FROM "${db.schema}".wf_activities WHERE workflow_id = $1 ORDER BY seq`, [
      wf,
    ]);
    t.deepEqual(
      records.rows.map((r) => [r.activity, r.state]),
      [
        ['t1', 'done'],
        ['w1', 'done'],
        ['w2', 'done'],
        ['w3', 'running'],
      ],
    );
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }

  release();
  await until('the workflow is done', async () => (await wfs.getStatus(wf)) === 0, 30_000, 50);
});

test.serial("a step whose workflow is in yesterday's partition or carried out of its day is found and transitions", async (t) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  const { db, node } = await workflowNode(t, 'wf_days_steps', {
    concurrency: 4,
    pollMs: 50,
    jobs: [defineJob({ type: 'b.step', perform: () => ({ ok: true }) }), defineJob({ type: 'b.hold', perform: () => held })],
  });
  const wfs = app(node.client, 'days');
  await wfs.deploy(`
app:
  id: days
  version: '1'
  graphs:
    - subscribes: b.start
      activities:
        t1: { type: trigger }
        h1: { type: worker, topic: b.hold }
        s2: { type: worker, topic: b.step }
      transitions:
        t1: [{ to: h1 }]
        h1: [{ to: s2 }]
`);
  await wfs.activate('1');
  const s = `"${db.schema}"`;
  await db.pool.query(`SELECT ${s}.make_wf_day((now() AT TIME ZONE 'UTC')::date - 1)`);
  const days = { yesterday: `(now() AT TIME ZONE 'UTC')::date - 1`, carried: `'infinity'::date` };
  const ids: Record<string, string> = {};
  for (const [name, day] of Object.entries(days)) {
    const id = await wfs.pub('b.start', {});
    ids[name] = id;
    await until(`${name}: h1 runs`, async () => (await wfs.export(id)).activities.some((a) => a.activity === 'h1' && a.jobId), 20_000, 50);
    // Moved while its step runs, as the drop of its day carries a running workflow (or as if it started yesterday).
    await db.pool.query(`UPDATE ${s}.wf_activities SET start_day = ${day} WHERE workflow_id = $1`, [id]);
    await db.pool.query(`UPDATE ${s}.wf_workflows SET start_day = ${day} WHERE id = $1`, [id]);
  }
  release();
  for (const [name, id] of Object.entries(ids)) {
    await until(`${name}: finished`, async () => (await wfs.getStatus(id)) === 0, 20_000, 50);
    const records = await db.pool.query(
      `SELECT activity, state, entered, start_day::text AS day, (start_day = ${days[name as keyof typeof days]}) AS there
       FROM ${s}.wf_activities WHERE workflow_id = $1 ORDER BY seq`,
      [id],
    );
    t.deepEqual(
      records.rows.map((r) => [r.activity, r.state, r.entered, r.there]),
      [
        ['t1', 'done', 1, true],
        ['h1', 'done', 1, true],
        ['s2', 'done', 1, true],
      ],
      name,
    );
  }
});
