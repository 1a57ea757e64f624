/**
 * The array fan-out form of `await` (`items:`): one child workflow per element, outputs in element
 * order whatever order the children end in, an empty array, a mapping that gives no array, `await:
 * false`, a failing child (the others interrupted), interrupt with descend, and the fan-in exactly
 * once when children end concurrently on two nodes.
 */
import test from 'ava';
import { defineJob, type PartitaNode } from '@partita/runtime';
import { freshSchema, until, type TestSchema } from '../../../test/helpers/index.js';
import { FAILED, INTERRUPTED, WorkflowFailedError, app, type WorkflowEvent } from '../src/index.js';
import { wfOps } from '../src/db.js';
import { dropExpiredPartitions } from '../src/expiry.js';
import { startWorkflowNode } from './helpers.js';

const HOLD_RULE = "conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }";

const APP = `
app:
  id: fan
  version: '1'
  graphs:
    - subscribes: fan.start
      activities:
        t1: { type: trigger }
        fan:
          type: await
          topic: fan.child
          items: '{t1.output.data.list}'
          input: { maps: { n: '{$item.n}', i: '{$index}' } }
          job: { maps: { out: '{$self.output.data}' } }
        after: { type: worker, topic: fan.after, input: { maps: { count: '{fan.input.data.count}' } } }
      transitions:
        t1: [{ to: fan }]
        fan: [{ to: after }]
    - subscribes: fan.bare
      activities:
        t1: { type: trigger }
        fan: { type: await, topic: fan.child, items: '{t1.output.data.list}', job: { maps: { out: '{$self.output.data}' } } }
      transitions:
        t1: [{ to: fan }]
    - subscribes: fan.loop
      activities:
        t1: { type: trigger }
        top: { type: hook, cycle: true }
        fan:
          type: await
          topic: fan.child
          items: '{t1.output.data.list}'
          input: { maps: { n: '{$item.n}', i: '{$index}' } }
          job:
            maps:
              passes: { '@pipe': [['{$job.data.passes}', 0], ['{@conditional.nullish}'], ['{@math.add}', 1]] }
              last: '{$self.output.data}'
        again: { type: cycle, ancestor: top }
      transitions:
        t1: [{ to: top }]
        top: [{ to: fan }]
        fan: [{ to: again, conditions: { match: [{ expected: true, actual: { '@pipe': [['{$job.data.passes}', 2], ['{@number.lt}']] } }] } }]
    - subscribes: fan.nowait
      activities:
        t1: { type: trigger }
        fan: { type: await, topic: fan.child, await: false, items: '{t1.output.data.list}', job: { maps: { out: '{$self.output.data}' } } }
      transitions:
        t1: [{ to: fan }]
    - subscribes: fan.mixed
      activities:
        t1: { type: trigger }
        fan: { type: await, topic: fan.kid, items: '{t1.output.data.list}', job: { maps: { out: '{$self.output.data}' } } }
      transitions:
        t1: [{ to: fan }]
    - subscribes: fan.child
      activities:
        t1: { type: trigger }
        sq:
          type: worker
          topic: fan.square
          input: { maps: { n: '{t1.output.data.n}' } }
          job: { maps: { sq: '{$self.output.data.sq}', i: '{t1.output.data.i}' } }
      transitions:
        t1: [{ to: sq }]
    - subscribes: fan.kid
      activities:
        t1: { type: trigger }
        boom: { type: worker, topic: fan.boom, retry: { maximumAttempts: 1 } }
        wait: { type: hook, job: { maps: { woke: true } } }
      transitions:
        t1:
          - to: boom
            conditions: { match: [{ expected: true, actual: '{t1.output.data.fail}' }] }
          - to: wait
            conditions: { match: [{ expected: true, actual: '{t1.output.data.hold}' }] }
      hooks:
        fan.go:
          - to: wait
            ${HOLD_RULE}
`;

interface Counters {
  square: number;
  after: number;
}

async function fanNode(t: import('ava').ExecutionContext, db: TestSchema, counters: Counters): Promise<PartitaNode> {
  return startWorkflowNode(t, db, {
    concurrency: 8,
    jobs: [
      defineJob<{ n: number }>({
        type: 'fan.square',
        // Children end in an order unrelated to their index.
        perform: async (p) => {
          counters.square += 1;
          await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 8)));
          return { sq: p.n * p.n };
        },
      }),
      defineJob({
        type: 'fan.boom',
        maxAttempts: 1,
        perform: () => {
          throw new Error('boom');
        },
      }),
      defineJob({
        type: 'fan.after',
        perform: (p) => {
          counters.after += 1;
          return p;
        },
      }),
    ],
  });
}

async function setup(t: import('ava').ExecutionContext, name: string) {
  const db = await freshSchema(name);
  t.teardown(() => db.drop());
  const counters: Counters = { square: 0, after: 0 };
  const node = await fanNode(t, db, counters);
  const fan = app(node.client, 'fan');
  await fan.deploy(APP);
  await fan.activate('1');
  return { db, node, fan, counters };
}

test.serial('fan-out: outputs in element order, $item/$index, the element as input, an empty array, await: false', async (t) => {
  const { db, fan } = await setup(t, 'wf_fan_order');
  const list = Array.from({ length: 40 }, (_, i) => ({ n: 40 - i }));
  const id = await fan.pub('fan.start', { list });
  await until('the parent finished', async () => (await fan.getStatus(id)) === 0, 30_000);
  const out = (await fan.getState('fan.start', id)).data['out'] as { items: { sq: number; i: number }[]; ids: string[] };
  t.deepEqual(
    out.items,
    list.map((e, i) => ({ sq: e.n * e.n, i })),
  );
  t.deepEqual(
    out.ids,
    list.map((_, i) => `${id}-fan-${i}`),
  );
  for (const child of out.ids) t.is((await fan.getState('fan.child', child)).metadata.pj, id);
  // The fan-in's rows are taken with it; the count is the activity's input.
  const left = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".wf_fanin`);
  t.is(left.rows[0].n, 0);
  const rec = (await fan.export(id)).activities.find((a) => a.activity === 'fan')!;
  t.deepEqual(rec.input, { count: 40 });

  // No input.maps: each child's input is the element itself.
  const bare = (await fan.pubsub('fan.bare', { list: [{ n: 2, i: 7 }, { n: 3 }] }, { timeoutMs: 20_000 })) as Record<string, any>;
  t.deepEqual(bare['out'].items, [{ sq: 4, i: 7 }, { sq: 9 }]);

  // In a cycle: each pass fans out again, its children ids carry the pass, its fan-in is its own.
  const loop = (await fan.pubsub('fan.loop', { list: [{ n: 1 }, { n: 2 }, { n: 3 }] }, { timeoutMs: 20_000 })) as Record<string, any>;
  t.is(loop['passes'], 2);
  t.deepEqual(loop['last'].items, [
    { sq: 1, i: 0 },
    { sq: 4, i: 1 },
    { sq: 9, i: 2 },
  ]);
  t.true((loop['last'].ids as string[]).every((c, i) => c.endsWith(`-fan-1-${i}`)));

  // An empty array completes the activity at once.
  const empty = (await fan.pubsub('fan.bare', { list: [] }, { timeoutMs: 20_000 })) as Record<string, any>;
  t.deepEqual(empty['out'], { items: [], ids: [] });

  // await: false: goes on at once with the ids; the children run on their own, no parent link.
  const nowait = (await fan.pubsub('fan.nowait', { list: [{ n: 5 }, { n: 6 }] }, { timeoutMs: 20_000 })) as Record<string, any>;
  t.is(nowait['out'].items, undefined);
  t.is(nowait['out'].ids.length, 2);
  for (const child of nowait['out'].ids as string[]) {
    await until('the child finished', async () => (await fan.getStatus(child)) === 0, 20_000);
    t.is((await fan.getState('fan.child', child)).metadata.pj, null);
  }
  t.is(((await fan.getState('fan.child', nowait['out'].ids[1])).data as { sq: number }).sq, 36);
});

test.serial('fan-out: items that are no array fail the workflow with FANOUT_ITEMS', async (t) => {
  const { fan } = await setup(t, 'wf_fan_bad');
  for (const list of ['abc', { n: 1 }, null, undefined]) {
    const err = await t.throwsAsync(fan.pubsub('fan.bare', list === undefined ? {} : { list }, { timeoutMs: 20_000 }), {
      instanceOf: WorkflowFailedError,
    });
    t.is(err?.status, FAILED);
    const { error } = err?.output as { error: { name: string; code: string; message: string } };
    t.is(error.code, 'FANOUT_ITEMS');
    t.is(error.name, 'FanOutItemsError');
    t.regex(error.message, /await fan of graph fan\.bare: items gave .*, not an array/);
  }
});

test.serial(
  'fan-out: a failing child fails the parent and interrupts its siblings; interrupt with descend reaches every child',
  async (t) => {
    const { db, fan } = await setup(t, 'wf_fan_fail');
    // Three children wait on a hook; the fourth fails in its worker.
    const id = await fan.pub('fan.mixed', { list: [{ hold: true }, { hold: true }, { fail: true }, { hold: true }] });
    await until('the parent failed', async () => (await fan.getStatus(id)) === FAILED, 20_000);
    const rec = (await fan.export(id)).activities.find((a) => a.activity === 'fan')!;
    t.is(rec.state, 'failed');
    t.like(rec.errors[0] as object, { activity: 'boom' });
    // The siblings are interrupted by a job after the failure's transaction (not under the parent's lock).
    for (const i of [0, 1, 3])
      await until(`sibling ${i} interrupted`, async () => (await fan.getStatus(`${id}-fan-${i}`)) === INTERRUPTED, 10_000);
    t.is(await fan.getStatus(`${id}-fan-2`), FAILED);
    t.is(await fan.hook('fan.go', { id: `${id}-fan-0` }), undefined, 'an interrupted sibling waits no more');

    // A child released after its sibling's failure ends on its own; the failed parent stays failed.
    const outputs: WorkflowEvent[] = [];
    const unsub = await fan.psub('>', (_d, e) => e.kind === 'output' && outputs.push(e));
    t.teardown(unsub);
    const desc = await fan.pub('fan.mixed', { list: [{ hold: true }, { hold: true }, { hold: true }] });
    await until('children waiting', async () => (await fan.getStatus(`${desc}-fan-2`)) > 0, 20_000);
    // One child ends before the interrupt: it stays done, the others are interrupted.
    t.is(await fan.hook('fan.go', { id: `${desc}-fan-1` }), `${desc}-fan-1`);
    t.true(await fan.interrupt('fan.mixed', desc, { descend: true, reason: 'stop' }));
    t.is(await fan.getStatus(desc), INTERRUPTED);
    t.is(await fan.getStatus(`${desc}-fan-0`), INTERRUPTED);
    t.is(await fan.getStatus(`${desc}-fan-1`), 0);
    t.is(await fan.getStatus(`${desc}-fan-2`), INTERRUPTED);
    await until('outputs of the parent and its children', () => outputs.filter((e) => e.id.startsWith(desc)).length >= 4, 10_000);
    await new Promise((r) => setTimeout(r, 200));
    t.is(outputs.filter((e) => e.id === desc).length, 1);
    // The interrupt's three outputs (parent, two children) were published by one emit job.
    const emits = await db.pool.query(
      `SELECT payload FROM "${db.schema}".jobs_history WHERE type = 'partita.wf.emit' AND payload->'events' @> $1::jsonb`,
      [JSON.stringify([{ id: desc }])],
    );
    t.deepEqual(
      emits.rows.map((r) => (r.payload.events as { id: string }[]).map((e) => e.id).sort()),
      [[desc, `${desc}-fan-0`, `${desc}-fan-2`].sort()],
    );

    // A child interrupted on its own (throw, default): the fan-out fails as for a failed child.
    const one = await fan.pub('fan.mixed', { list: [{ hold: true }, { hold: true }] });
    await until('children waiting', async () => (await fan.getStatus(`${one}-fan-1`)) > 0, 20_000);
    t.true(await fan.interrupt('fan.kid', `${one}-fan-0`, { reason: 'no' }));
    t.is(await fan.getStatus(one), FAILED);
    await until('the sibling interrupted', async () => (await fan.getStatus(`${one}-fan-1`)) === INTERRUPTED, 10_000);
  },
);

test.serial('fan-out: children ending concurrently on two nodes: the fan-in runs exactly once', async (t) => {
  const { db, node, fan, counters } = await setup(t, 'wf_fan_two');
  const other: Counters = { square: 0, after: 0 };
  await fanNode(t, db, other);
  void node;
  const K = 300;
  const outputs: WorkflowEvent[] = [];
  const unsub = await fan.psub('fan.start', (_d, e) => e.kind === 'output' && outputs.push(e));
  t.teardown(unsub);
  const parents = await Promise.all([0, 1, 2].map(() => fan.pub('fan.start', { list: Array.from({ length: K }, (_, i) => ({ n: i })) })));
  for (const id of parents) await until('the parent finished', async () => (await fan.getStatus(id)) === 0, 60_000);
  t.log(`children performed on node a: ${counters.square}, on node b: ${other.square}`);
  t.true(counters.square > 0 && other.square > 0, 'both nodes ran children');
  t.is(counters.square + other.square, 3 * K);
  for (const id of parents) {
    const out = (await fan.getState('fan.start', id)).data['out'] as { items: { sq: number; i: number }[] };
    t.is(out.items.length, K);
    t.true(out.items.every((x, i) => x.i === i && x.sq === i * i));
    const { rows } = await db.pool.query(
      `SELECT activity, entered, state FROM "${db.schema}".wf_activities WHERE workflow_id = $1 AND activity IN ('fan', 'after') ORDER BY activity`,
      [id],
    );
    t.deepEqual(rows, [
      { activity: 'after', entered: 1, state: 'done' },
      { activity: 'fan', entered: 1, state: 'done' },
    ]);
  }
  t.is(counters.after + other.after, 3, 'the step after the fan-in ran once per parent');
  await until('the outputs', () => outputs.length >= 3, 10_000);
  await new Promise((r) => setTimeout(r, 200));
  t.is(outputs.length, 3);
});

test.serial('fan-out: a failing child among 1,050 waiting ones: every sibling is interrupted (two stop batches)', async (t) => {
  const { db, fan } = await setup(t, 'wf_fan_stop');
  const list = [...Array.from({ length: 1050 }, () => ({ hold: true })), { fail: true }];
  const id = await fan.pub('fan.mixed', { list });
  await until('the parent failed', async () => (await fan.getStatus(id)) === FAILED, 20_000);
  const count = async () =>
    (
      await db.pool.query(
        `SELECT count(*) FILTER (WHERE status = $2)::int AS interrupted, count(*) FILTER (WHERE status > 0)::int AS running
         FROM "${db.schema}".wf_workflows WHERE parent_id = $1`,
        [id, INTERRUPTED],
      )
    ).rows[0] as { interrupted: number; running: number };
  await until('every sibling interrupted', async () => (await count()).interrupted === 1050, 30_000);
  t.deepEqual(await count(), { interrupted: 1050, running: 0 });
  const hooks = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".wf_hooks`);
  t.is(hooks.rows[0].n, 0, 'their hooks are released');
});

test.serial(
  'fan-out and retention: parent, children and their records stay in their start day partitions; outputs a failed fan-out left go with the day',
  async (t) => {
    const { db, fan } = await setup(t, 'wf_fan_keep');
    const q = async (sql: string, params: unknown[]) => (await db.pool.query(sql.replaceAll('{{s}}', `"${db.schema}"`), params)).rows;
    const where = async (ids: string[]) => ({
      carried: (await q(`SELECT count(*)::int AS n FROM {{s}}.wf_workflows_carried WHERE id = ANY($1)`, [ids]))[0].n as number,
      carriedRecords: (await q(`SELECT count(*)::int AS n FROM {{s}}.wf_activities_carried WHERE workflow_id = ANY($1)`, [ids]))[0]
        .n as number,
      records: (await q(`SELECT count(*)::int AS n FROM {{s}}.wf_activities WHERE workflow_id = ANY($1)`, [ids]))[0].n as number,
      // Every record in its workflow's partition.
      apart: (
        await q(
          `SELECT count(*)::int AS n FROM {{s}}.wf_activities a JOIN {{s}}.wf_workflows w ON w.id = a.workflow_id
           WHERE w.id = ANY($1) AND a.start_day <> w.start_day`,
          [ids],
        )
      )[0].n as number,
    });

    const id = await fan.pub('fan.bare', { list: [{ n: 1 }, { n: 2 }, { n: 3 }] });
    await until('the fan-out done', async () => (await fan.getStatus(id)) === 0, 20_000);
    const done = [id, `${id}-fan-0`, `${id}-fan-1`, `${id}-fan-2`];
    const placed = await where(done);
    t.like(placed, { carried: 0, carriedRecords: 0, apart: 0 });
    t.true(placed.records >= 4 * 2, 'the parent and children kept their records');
    t.is((await q(`SELECT count(*)::int AS n FROM {{s}}.wf_fanin WHERE workflow_id = $1`, [id]))[0].n, 0, 'the fan-in took its outputs');

    // One child ends (its output waits in wf_fanin), then another is interrupted: the fan-out fails
    // with that output left behind; the third is interrupted by the stop-children batch. Each stays
    // in its day as the parent does.
    const failed = await fan.pub('fan.mixed', { list: [{ hold: true }, { hold: true }, { hold: true }] });
    await until('children waiting', async () => (await fan.getStatus(`${failed}-fan-2`)) > 0, 20_000);
    t.is(await fan.hook('fan.go', { id: `${failed}-fan-0` }), `${failed}-fan-0`);
    await until('the first child done', async () => (await fan.getStatus(`${failed}-fan-0`)) === 0, 10_000);
    t.true(await fan.interrupt('fan.kid', `${failed}-fan-1`, { reason: 'no' }));
    t.is(await fan.getStatus(failed), FAILED);
    await until('the third child stopped', async () => (await fan.getStatus(`${failed}-fan-2`)) === INTERRUPTED, 10_000);
    const all = [failed, `${failed}-fan-0`, `${failed}-fan-1`, `${failed}-fan-2`];
    t.like(await where(all), { carried: 0, carriedRecords: 0, apart: 0 });
    t.is((await q(`SELECT count(*)::int AS n FROM {{s}}.wf_fanin WHERE workflow_id = $1`, [failed]))[0].n, 1);

    // Dropping the days (as if they had passed) takes the workflows, their records and the left output.
    const ops = wfOps(db.schema);
    const later = new Date(Date.now() + 10 * 86_400_000);
    await until(
      'the days dropped',
      async () => {
        await dropExpiredPartitions(db.pool, ops, later);
        return (await q(`SELECT count(*)::int AS n FROM {{s}}.wf_workflows WHERE id = ANY($1)`, [[...done, ...all]]))[0].n === 0;
      },
      20_000,
    );
    t.is((await q(`SELECT count(*)::int AS n FROM {{s}}.wf_fanin`, []))[0].n, 0);
    t.is((await q(`SELECT count(*)::int AS n FROM {{s}}.wf_activities WHERE workflow_id = ANY($1)`, [[...done, ...all]]))[0].n, 0);
  },
);
