/**
 * pub's `pending` and resume; scrub; retention: workflows (with their activity records) stay in the
 * partition of the day they started from insert to finish; finished ones leave reads at their expire
 * and the disk with their day's partitions (one DROP a day, once they have all expired); running
 * workflows and `expire: -1` graphs outlive their day (carried out at the drop); pending ones never
 * resumed and early signals go by the row sweep, in bounded batches.
 */
import test from 'ava';
import pg from 'pg';
import { ValidationError } from '@partita/core';
import { connect } from '@partita/client';
import { until } from '../../../test/helpers/index.js';
import { DuplicateWorkflowError, INTERRUPTED, PENDING, WorkflowNotFoundError, app, workflowsPlugin } from '../src/index.js';
import { wfOps } from '../src/db.js';
import { dropExpiredPartitions, ensurePartitions, removeExpired } from '../src/expiry.js';
import { workflowNode } from './helpers.js';

/** A graph `P.start` that waits at a hook until `P.go` names its id, then ends with the hook's `msg`. */
const waitingGraph = (p: string, expire: number) => `
    - subscribes: ${p}.start
      expire: ${expire}
      activities:
        t1: { type: trigger }
        wait: { type: hook, job: { maps: { got: '{wait.output.data.msg}' } } }
      transitions:
        t1: [{ to: wait }]
      hooks:
        ${p}.go:
          - to: wait
            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }`;

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
${waitingGraph('w', 1)}${waitingGraph('z', 0)}${waitingGraph('h', 60)}`;

async function setup(t: import('ava').ExecutionContext, expiryIntervalMs?: number) {
  const { db, node } = await workflowNode(t, 'wf_keep', {
    concurrency: 2,
    plugins: [workflowsPlugin(expiryIntervalMs ? { expiryIntervalMs } : {})],
  });
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  t.teardown(() => pool.end());
  const keep = app(node.client, 'keep');
  await keep.deploy(APP);
  await keep.activate('1');
  const count = async (table: string, ids: string[]) =>
    Number(
      (
        await pool.query(`SELECT count(*) FROM ${db.schema}.${table} WHERE ${table === 'wf_workflows' ? 'id' : 'workflow_id'} = ANY($1)`, [
          ids,
        ])
      ).rows[0].count,
    );
  const signals = async () => Number((await pool.query(`SELECT count(*) FROM ${db.schema}.wf_signals`)).rows[0].count);
  return { db, node, pool, keep, count, signals };
}

test.serial('pending: held at status -1 until resume, on its data; resumed once; bad pending refused', async (t) => {
  const { keep } = await setup(t);
  // Graph h keeps an early signal 60 s (w's expire of 1 s let a loaded machine's resume miss it).
  const id = await keep.pub('h.start', {}, { pending: 30 });
  t.is(await keep.getStatus(id), PENDING);
  t.deepEqual(
    (await keep.export(id)).activities.map((a) => [a.activity, a.state]),
    [['t1', 'pending']],
  );
  // A hook for it while it is held is kept, and delivered once it waits.
  t.is(await keep.hook('h.go', { id, msg: 'early' }), undefined);
  t.true(await keep.resume(id));
  t.is(await keep.getStatus(id), 0);
  t.is((await keep.getState('h.start', id)).data['got'], 'early');
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

test.serial('expire: 0 — gone to every reader once finished, yet pubsub gets the output, with a bus or by reading Postgres', async (t) => {
  const { db, keep, count } = await setup(t);
  // No bus: pubsub's only source is its read of Postgres, which must see a workflow past its expire.
  const busless = await connect({ postgres: db.url, schema: db.schema, nats: false });
  t.teardown(() => busless.close());
  const sources = [
    ['no bus', app(busless, 'keep')],
    ['bus', keep],
  ] as const;
  for (const [source, handle] of sources) {
    const id = `zero-${source.replace(' ', '-')}`;
    const out = handle.pubsub('z.start', {}, { id, timeoutMs: 15_000 });
    await until(`${id} waits for its hook`, async () => (await count('wf_hooks', [id])) > 0);
    t.is(await keep.hook('z.go', { id, msg: source }), id);
    t.deepEqual(await out, { got: source }, source);
    // Finished with expire 0: no other read returns it.
    await t.throwsAsync(keep.getStatus(id), { instanceOf: WorkflowNotFoundError }, source);
  }
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

const inTables = async (pool: pg.Pool, schema: string, table: string, ids: string[]) =>
  (
    await pool.query(
      `SELECT tableoid::regclass::text AS t, count(*)::int AS n FROM "${schema}".${table} WHERE ${table === 'wf_workflows' ? 'id' : 'workflow_id'} = ANY($1) GROUP BY 1 ORDER BY 1`,
      [ids],
    )
  ).rows.map((r) => `${r.t.replace(/^.*\./, '')}:${r.n}`);

const utcDay = (d: Date) => d.toISOString().slice(0, 10).replaceAll('-', '');

test.serial(
  'expiry: finished workflows are gone from reads at their expire and from disk with their day, in one DROP; running and kept ones are carried out of it and stay',
  async (t) => {
    // The node's own sweep and drops stay out of the way: this test runs each step itself.
    const { db, pool, keep, count } = await setup(t, 3_600_000);
    const ops = wfOps(db.schema);
    // Three ways to finish: at once (the trigger's transaction), by a later transition, by interrupt.
    const atOnce = await Promise.all([1, 2, 3].map((n) => keep.pub('e.start', { n })));
    const later = await keep.pub('w.start', {});
    const interrupted = await keep.pub('w.start', {});
    const forever = await keep.pub('f.start', {});
    const running = await keep.pub('w.start', {});
    await keep.hook('w.go', { id: later, msg: 'done' });
    t.true(await keep.interrupt('w.start', interrupted));
    const finished = [...atOnce, later, interrupted];
    const day = (await pool.query(`SELECT to_char((now() + interval '1 second') AT TIME ZONE 'UTC', 'YYYYMMDD') AS d`)).rows[0].d;
    t.deepEqual(await inTables(pool, db.schema, 'wf_workflows', finished), [`wf_workflows_${day}:5`]);
    t.deepEqual(await inTables(pool, db.schema, 'wf_activities', finished), [`wf_activities_${day}:10`]);
    t.deepEqual(await inTables(pool, db.schema, 'wf_workflows', [forever, running]), [`wf_workflows_${day}:2`]);
    t.is((await pool.query(`SELECT data FROM "${db.schema}".wf_workflows WHERE id = $1`, [later])).rows[0].data.got, 'done');

    await new Promise((r) => setTimeout(r, 1_200));
    // Past their expire: no read returns them, though their rows wait for their day's drop.
    for (const id of finished) {
      await t.throwsAsync(keep.getStatus(id), { instanceOf: WorkflowNotFoundError });
      await t.throwsAsync(keep.export(id), { instanceOf: WorkflowNotFoundError });
    }
    const listed = (await keep.list()).map((w) => w.id);
    t.deepEqual(
      listed.filter((id) => finished.includes(id)),
      [],
    );
    t.true(listed.includes(forever) && listed.includes(running));
    await t.throwsAsync(
      keep.pub('e.start', {}, { id: later }),
      { instanceOf: DuplicateWorkflowError },
      'an id is taken until its row is gone',
    );
    // The row sweep leaves the daily partitions alone.
    t.deepEqual(await removeExpired(pool, ops), { workflows: 0, signals: 0 });
    t.is(await count('wf_activities', finished), 10);

    t.deepEqual(await dropExpiredPartitions(pool, ops), [], "today's partition stays until the day is over");
    const tomorrow = new Date(Date.now() + 86_400_000 + 60_000);
    t.true((await dropExpiredPartitions(pool, ops, tomorrow)).includes(day));
    t.is(await count('wf_workflows', finished), 0);
    t.is(await count('wf_activities', finished), 0);
    t.is(await keep.getStatus(forever), 0);
    t.true((await keep.getStatus(running)) > 0);
    t.deepEqual(await inTables(pool, db.schema, 'wf_workflows', [forever, running]), ['wf_workflows_carried:2']);
    t.deepEqual(await inTables(pool, db.schema, 'wf_activities', [forever, running]), ['wf_activities_carried:3']);
    // (The test dropped today's partition ahead of time: made again, as the node's hourly round does.)
    t.true((await ensurePartitions(pool, ops)) >= 2);
    await keep.hook('w.go', { id: running, msg: 'still runs' });
    t.is((await keep.getState('w.start', running)).data['got'], 'still runs');
  },
);

test.serial('the row sweep: unresumed pending workflows (with records) and early signals past their time go, in batches', async (t) => {
  const { db, pool, keep, count, signals } = await setup(t, 3_600_000);
  const unresumed = await Promise.all([1, 2, 3].map(() => keep.pub('e.start', {}, { pending: 1 })));
  const held = await keep.pub('e.start', {}, { pending: 60 });
  t.is(await keep.hook('w.go', { id: 'not-yet-started', msg: 'kept' }), undefined);
  t.is(await signals(), 1);
  t.is(await count('wf_activities', unresumed), 3);
  await new Promise((r) => setTimeout(r, 1_200));
  t.false(await keep.resume(unresumed[0]!), 'a pending workflow past its time is not resumed');
  for (const id of unresumed) await t.throwsAsync(keep.getStatus(id), { instanceOf: WorkflowNotFoundError });
  // maxBatches bounds one sweep: the rest waits for the next.
  t.deepEqual(await removeExpired(pool, wfOps(db.schema), { batch: 2, maxBatches: 1 }), { workflows: 2, signals: 1 });
  t.deepEqual(await removeExpired(pool, wfOps(db.schema), { batch: 2, maxBatches: 10 }), { workflows: 1, signals: 0 });
  t.is(await count('wf_activities', unresumed), 0);
  t.is(await signals(), 0);
  t.is(await keep.getStatus(held), PENDING);
});

test.serial('10,000 expired workflows go in one DROP of their day', async (t) => {
  const { db, pool, keep } = await setup(t, 3_600_000);
  const ops = wfOps(db.schema);
  const model = await keep.pub('e.start', { n: 1 });
  const N = 10_000;
  // Copies of a real finished workflow and its records, in its day's partition.
  await pool.query(
    `INSERT INTO "${db.schema}".wf_workflows SELECT w.id || '-' || i, w.app_id, w.version, w.topic, w.partition, w.status, w.data, w.search,
       w.output, w.parent_id, w.parent_activity, w.parent_dimension, w.created_at, w.finished_at, w.expire_at, w.parent_index, w.start_day
     FROM "${db.schema}".wf_workflows w, generate_series(2, $2) i WHERE w.id = $1`,
    [model, N],
  );
  await pool.query(
    `INSERT INTO "${db.schema}".wf_activities (workflow_id, activity, dimension, type, state, input, output, start_day)
     SELECT a.workflow_id || '-' || i, a.activity, a.dimension, a.type, a.state, a.input, a.output, a.start_day
     FROM "${db.schema}".wf_activities a, generate_series(2, $2) i WHERE a.workflow_id = $1`,
    [model, N],
  );
  const rows = async (table: string) => Number((await pool.query(`SELECT count(*) FROM "${db.schema}".${table}`)).rows[0].count);
  t.is(await rows('wf_workflows'), N);
  t.is(await rows('wf_activities'), 2 * N);
  const began = performance.now();
  const days = await dropExpiredPartitions(pool, ops, new Date(Date.now() + 86_400_000 + 60_000));
  t.log(`dropped ${N} workflows (${2 * N} records) in ${(performance.now() - began).toFixed(1)} ms`);
  t.true(days.includes(utcDay(new Date(Date.now() + 1_000))));
  t.is(await rows('wf_workflows'), 0);
  t.is(await rows('wf_activities'), 0);
});

test.serial('the node makes its partitions and sweeps by itself', async (t) => {
  const { db, pool, keep, count } = await setup(t, 200);
  const parts = async () =>
    (
      await pool.query(
        `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
         JOIN pg_namespace n ON n.oid = p.relnamespace WHERE n.nspname = $1 AND p.relname = 'wf_workflows' ORDER BY 1`,
        [db.schema],
      )
    ).rows.map((r) => r.relname as string);
  t.is((await parts()).length, 1 + 3, 'carried, today and 2 days ahead');
  const id = await keep.pub('e.start', {}, { pending: 1 });
  t.is(await keep.getStatus(id), PENDING);
  await until(
    'removed by the sweep',
    async () => (await count('wf_activities', [id])) === 0 && (await count('wf_workflows', [id])) === 0,
    10_000,
  );
  t.pass();
});

test.serial(
  'a call waiting on a workflow that another transaction finishes meanwhile sees it finished; one a drop carries out of its day meanwhile runs again, not fails',
  async (t) => {
    const { db, pool, keep } = await setup(t, 3_600_000);
    const s = `"${db.schema}"`;
    // Another transaction holds the workflow's lock, changes it, and commits while the interrupt waits for that lock.
    const meanwhile = async (id: string, change: (other: pg.PoolClient) => Promise<unknown>) => {
      const other = await pool.connect();
      try {
        await other.query('BEGIN');
        await other.query(`SELECT 1 FROM ${s}.wf_workflows WHERE id = $1 FOR UPDATE`, [id]);
        const interrupted = keep.interrupt('w.start', id);
        await new Promise((r) => setTimeout(r, 300));
        await change(other);
        await other.query('COMMIT');
        return await interrupted;
      } finally {
        other.release();
      }
    };
    const finished = await keep.pub('w.start', {});
    const finishing = (other: pg.PoolClient) =>
      other.query(`UPDATE ${s}.wf_workflows SET status = 0, finished_at = now(), expire_at = now() + interval '1 hour' WHERE id = $1`, [
        finished,
      ]);
    t.false(await meanwhile(finished, finishing), 'finished meanwhile: not interrupted');
    t.is(await keep.getStatus(finished), 0);
    // What prune_wf_partitions does to a running workflow of a day it drops: its row and records move.
    const carried = await keep.pub('w.start', {});
    const carrying = async (other: pg.PoolClient) => {
      await other.query(`UPDATE ${s}.wf_workflows SET start_day = 'infinity' WHERE id = $1`, [carried]);
      await other.query(`UPDATE ${s}.wf_activities SET start_day = 'infinity' WHERE workflow_id = $1`, [carried]);
    };
    t.true(await meanwhile(carried, carrying), 'moved meanwhile: interrupted where it went');
    t.is(await keep.getStatus(carried), INTERRUPTED);
  },
);

test.serial('a workflow stays in the partition of the day it started from its insert to its finish: finishing moves no row', async (t) => {
  const { db, pool, keep } = await setup(t, 3_600_000);
  const id = await keep.pub('w.start', {});
  const where = async () => ({
    workflow: await inTables(pool, db.schema, 'wf_workflows', [id]),
    records: await inTables(pool, db.schema, 'wf_activities', [id]),
  });
  const day = (
    await pool.query(`SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYYMMDD') AS d FROM "${db.schema}".wf_workflows WHERE id = $1`, [id])
  ).rows[0].d;
  t.deepEqual(await where(), { workflow: [`wf_workflows_${day}:1`], records: [`wf_activities_${day}:2`] });
  const ctid = async () =>
    (await pool.query(`SELECT ctid::text AS c, xmin::text AS x FROM "${db.schema}".wf_workflows WHERE id = $1`, [id])).rows[0] as object;
  const before = await ctid();
  await keep.hook('w.go', { id, msg: 'done' });
  t.is(await keep.getStatus(id), 0);
  t.deepEqual(await where(), { workflow: [`wf_workflows_${day}:1`], records: [`wf_activities_${day}:2`] });
  t.notDeepEqual(await ctid(), before, 'the finishing write updated the row');
});

test.serial(
  "a day's partitions wait for its finished workflows' expiry, 7 days at most; then what is still kept is carried out and swept at its time",
  async (t) => {
    const { db, pool, keep, count } = await setup(t, 3_600_000);
    const ops = wfOps(db.schema);
    const short = await keep.pub('e.start', { n: 1 });
    const long = await keep.pub('e.start', { n: 2 });
    const day = utcDay(new Date(Date.now() + 1_000));
    // `long` is kept 3 days: its day waits for it.
    await pool.query(`UPDATE "${db.schema}".wf_workflows SET expire_at = now() + interval '3 days' WHERE id = $1`, [long]);
    const at = (days: number) => new Date(Date.now() + days * 86_400_000 + 60_000);
    t.false((await dropExpiredPartitions(pool, ops, at(1))).includes(day), 'kept by a workflow that has not expired');
    t.is(await count('wf_workflows', [short, long]), 2);
    t.true((await dropExpiredPartitions(pool, ops, at(3))).includes(day), 'dropped once it has');
    t.is(await count('wf_workflows', [short, long]), 0);
    t.is(await count('wf_activities', [short, long]), 0);
    // A day kept by one workflow for 30 days drops after 7, that workflow carried out with its records.
    await ensurePartitions(pool, ops);
    const kept = await keep.pub('e.start', { n: 3 });
    const gone = await keep.pub('e.start', { n: 4 });
    await pool.query(`UPDATE "${db.schema}".wf_workflows SET expire_at = now() + interval '30 days' WHERE id = $1`, [kept]);
    t.false((await dropExpiredPartitions(pool, ops, at(6))).includes(day));
    t.true((await dropExpiredPartitions(pool, ops, at(7))).includes(day));
    t.deepEqual(await inTables(pool, db.schema, 'wf_workflows', [kept, gone]), ['wf_workflows_carried:1']);
    t.deepEqual(await inTables(pool, db.schema, 'wf_activities', [kept, gone]), ['wf_activities_carried:2']);
    t.is((await keep.getState('e.start', kept)).data['n'], 3);
    // At its expiry the row sweep removes it.
    await pool.query(`UPDATE "${db.schema}".wf_workflows SET expire_at = now() - interval '1 second' WHERE id = $1`, [kept]);
    t.deepEqual(await removeExpired(pool, ops), { workflows: 1, signals: 0 });
    t.is(await count('wf_workflows', [kept]), 0);
    t.is(await count('wf_activities', [kept]), 0);
  },
);

test.serial(
  "indexes: a workflow without searchable fields writes no search index entry, a finished one's row no expiry entry; hookAll's lookup can use the search index; step links are indexed by job id only",
  async (t) => {
    const { db, pool, keep } = await setup(t, 3_600_000);
    const finished = await keep.pub('e.start', { n: 1 });
    t.regex((await inTables(pool, db.schema, 'wf_workflows', [finished])).join(), /^wf_workflows_\d{8}:1$/);
    const defs = async (table: string) =>
      (
        await pool.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname`, [db.schema, table])
      ).rows.map((r) => r.indexdef as string);
    const days = (
      await pool.query(`SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename ~ '^wf_workflows_\\d{8}$'`, [db.schema])
    ).rows.map((r) => r.tablename as string);
    t.true(days.length >= 3);
    // Search entries only for workflows with searchable fields; expiry entries only for what the sweep reads (carried or pending
    // rows). No index of a day's rows holds a column a workflow's finish writes (status, expire_at: migration 0009), so that
    // update is HOT.
    for (const table of [...days, 'wf_workflows_carried']) {
      const d = await defs(table);
      t.deepEqual(
        d.filter((x) => /gin/.test(x)).map((x) => x.replace(/^.* USING/, 'USING')),
        ["USING gin (search jsonb_path_ops) WHERE (search <> '{}'::jsonb)"],
        table,
      );
      t.deepEqual(
        d.filter((x) => /\((expire_at|pending_until)\)/.test(x)).map((x) => x.replace(/^.* USING/, 'USING')),
        [
          ...(table === 'wf_workflows_carried' ? ['USING btree (expire_at) WHERE (expire_at IS NOT NULL)'] : []),
          'USING btree (pending_until) WHERE (pending_until IS NOT NULL)',
        ],
        table,
      );
      if (table !== 'wf_workflows_carried')
        t.deepEqual(
          d.filter((x) => /status|expire_at/.test(x)),
          [],
          table,
        );
    }
    // A step is found by its record's job id (migration 0008): a unique index on each day's records
    // and the carried ones (the planner counts on it to probe rather than read a day without
    // statistics); no wf_steps.
    for (const table of [...days.map((d) => d.replace('wf_workflows', 'wf_activities')), 'wf_activities_carried'])
      t.deepEqual(
        (await defs(table)).filter((x) => /\(job_id\)/.test(x)).map((x) => x.replace(/ INDEX .* USING/, ' INDEX USING')),
        ['CREATE UNIQUE INDEX USING btree (job_id) WHERE (job_id IS NOT NULL)'],
        table,
      );
    t.is((await pool.query(`SELECT to_regclass($1) AS r`, [`"${db.schema}".wf_steps`])).rows[0].r, null);
    // No foreign key from a workflow to its app version (migration 0009): its trigger was half of a workflow's insert.
    t.deepEqual(
      (
        await pool.query(`SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'`, [
          `"${db.schema}".wf_workflows`,
        ])
      ).rows,
      [],
    );
    // The ids and keys every step compares collate "C" (migration 0009), in every partition and the tables joined to them by id.
    const collations = (
      await pool.query(
        `SELECT c.relname || '.' || a.attname AS col, coalesce(co.collname, '?') AS coll
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_collation co ON co.oid = a.attcollation
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
           AND (c.relname ~ '^wf_(workflows|activities)' AND a.attname IN ('id', 'parent_id', 'workflow_id', 'activity', 'dimension', 'job_id')
                OR c.relname IN ('wf_hooks', 'wf_fanin') AND a.attname IN ('workflow_id', 'activity', 'dimension', 'child_id'))`,
        [db.schema],
      )
    ).rows as { col: string; coll: string }[];
    t.true(collations.length >= 2 * 6 + 3 + 4, collations.map((r) => r.col).join());
    t.deepEqual(
      collations.filter((r) => r.coll !== 'C').map((r) => `${r.col}: ${r.coll}`),
      [],
    );
    // The partial index is usable by hooks_by_search: its text implies the index predicate.
    const client = await pool.connect();
    try {
      await client.query('SET enable_seqscan = off');
      await client.query('SET enable_nestloop = off');
      const plan = (
        await client.query(`EXPLAIN ${wfOps(db.schema).hooks_by_search.text}`, ['keep', 'w.go', JSON.stringify({ group: 'red' })])
      ).rows
        .map((r) => r['QUERY PLAN'] as string)
        .join('\n');
      t.regex(plan, /wf_workflows_(carried|\d{8})_search/, plan);
    } finally {
      client.release();
    }
  },
);
