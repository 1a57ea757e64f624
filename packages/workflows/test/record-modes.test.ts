/**
 * How transition_write writes activity records: a step's transition inserts the next step's record
 * with a plain insert (an upsert's speculative insertion costs a WAL record more) and upserts the
 * record of the step that finished (a key probe in any generic plan), the transition that finishes
 * the workflow too; a record marked stored that is not there is still written, never lost. The
 * workflow's row is rewritten only by a transition that moves its semaphore or data.
 */
import test from 'ava';
import pg from 'pg';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { app } from '../src/index.js';
import { decodeTextArray } from '@partita/postgres';
import { wfOps } from '../src/db.js';
import { transitionWriteParams } from '../src/executor.js';
import { workflowNode } from './helpers.js';

const APP = `
app:
  id: modes
  version: '1'
  graphs:
    - subscribes: m.start
      activities:
        t1: { type: trigger }
        w1: { type: worker, topic: m.noop }
        w2: { type: worker, topic: m.noop }
        wait: { type: hook }
      transitions:
        t1: [{ to: w1 }]
        w1: [{ to: w2 }]
        w2: [{ to: wait }]
      hooks:
        m.go:
          - to: wait
            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }
`;

type Staged = { workflow_id: string; activity: string; state: string; mode?: string };

test.serial("a step's transition upserts the finished step's record and inserts the next one's without an upsert", async (t) => {
  // The records every transition_write of this process sends.
  const sent: Staged[][] = [];
  // And the workflow rows each one writes ($16, a JSON array).
  const rowsSent: { id: string; status: number }[][] = [];
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: pg.Client, ...args: unknown[]) {
    const config = args[0] as { name?: string; values?: unknown[] } | undefined;
    // Its record columns: $1 workflow ids, $2 activities, $5 states, $14 modes (binary text[]).
    if (config?.name?.startsWith('wf_transition_write') && Buffer.isBuffer(config.values?.[0])) {
      const [ids, activities, states, modes] = [0, 1, 4, 13].map((i) => decodeTextArray(config.values![i] as Buffer | null));
      sent.push(ids.map((id, i) => ({ workflow_id: id!, activity: activities[i]!, state: states[i]!, mode: modes[i] ?? undefined })));
      if (typeof config.values![15] === 'string')
        rowsSent.push(JSON.parse(config.values![15] as string) as { id: string; status: number }[]);
    }
    return original.apply(this, args);
  };
  t.teardown(() => {
    (pg.Client.prototype as unknown as { query: unknown }).query = original;
  });

  const { db, node } = await workflowNode(t, 'wf_modes', {
    concurrency: 2,
    pollMs: 50,
    jobs: [defineJob({ type: 'm.noop', perform: () => null })],
  });
  const modes = app(node.client, 'modes');
  await modes.deploy(APP);
  await modes.activate('1');
  const wf = await modes.pub('m.start', {});
  await until(
    'it waits at its hook',
    async () => (await modes.export(wf)).activities.some((a) => a.activity === 'wait' && a.state === 'waiting'),
    30_000,
    50,
  );
  const mine = sent.flat().filter((r) => r.workflow_id === wf);
  const of = (activity: string, state: string) => mine.filter((r) => r.activity === activity && r.state === state).map((r) => r.mode);
  t.deepEqual(of('w1', 'done'), ['u']);
  t.deepEqual(of('w2', 'running'), ['i']);
  t.deepEqual(of('w2', 'done'), ['u']);
  t.deepEqual(of('wait', 'waiting'), ['i']);
  t.deepEqual(
    (await modes.export(wf)).activities.map((a) => [a.activity, a.state]),
    [
      ['t1', 'done'],
      ['w1', 'done'],
      ['w2', 'done'],
      ['wait', 'waiting'],
    ],
  );

  // The statement itself: 'i' records take no conflict path; 'u' records do, and one that is not stored is inserted.
  const record = (activity: string, state: string, mode: 'u' | 'i') => ({
    workflowId: wf,
    record: {
      activity,
      dimension: '',
      type: 'worker',
      state,
      job_id: null,
      input: null,
      output: null,
      hook: null,
      attempts: 0,
      errors: [],
    },
    entered: true,
    mode,
  });
  const records = [record('w1', 'done', 'u'), record('extra', 'running', 'i'), record('ghost', 'running', 'u')];
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    const params = transitionWriteParams(records as Parameters<typeof transitionWriteParams>[0], [], null);
    const [{ 'QUERY PLAN': plan }] = (
      await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${wfOps(db.schema).transition_write.text}`, params)
    ).rows as { 'QUERY PLAN': unknown[] }[];
    const upserts: Record<string, unknown>[] = [];
    const walk = (n: Record<string, unknown>): void => {
      if (n['Conflict Resolution'] === 'UPDATE') upserts.push(n);
      for (const c of (n['Plans'] as Record<string, unknown>[] | undefined) ?? []) walk(c);
    };
    walk((plan[0] as { Plan: Record<string, unknown> }).Plan);
    t.is(upserts.length, 1);
    t.like(upserts[0], { 'Conflicting Tuples': 1, 'Tuples Inserted': 1 });
    const rows = (
      await client.query(`SELECT activity, state, entered FROM "${db.schema}".wf_activities WHERE workflow_id = $1 ORDER BY seq`, [wf])
    ).rows.map((r) => [r.activity, r.state, r.entered]);
    t.deepEqual(rows, [
      ['t1', 'done', 1],
      ['w1', 'done', 2],
      ['w2', 'done', 1],
      ['wait', 'waiting', 1],
      ['extra', 'running', 1],
      ['ghost', 'running', 1],
    ]);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }

  // The transition that finishes the workflow marks its last record stored too.
  await modes.hook('m.go', { id: wf });
  await until('it is done', async () => (await modes.getStatus(wf)) === 0, 30_000, 50);
  const finished = sent.flat().filter((r) => r.workflow_id === wf && r.activity === 'wait' && r.state === 'done');
  t.deepEqual(
    finished.map((r) => r.mode),
    ['u'],
  );
  // Its row is written by the transaction that starts it (workflows_insert) and by the one that
  // finishes it only: a step that enters the next leaves its semaphore and data as stored.
  t.deepEqual(
    rowsSent
      .flat()
      .filter((w) => w.id === wf)
      .map((w) => Number(w.status)),
    [0],
  );
  t.is(await modes.getStatus(wf), 0);
});

test.serial('records take their seq in the order they were staged, across blocks of 1,024 and above every earlier statement', async (t) => {
  const { db } = await workflowNode(t, 'wf_seq_blocks', { concurrency: 1, pollMs: 50, jobs: [] });
  const workflowId = 'seq-blocks';
  // Staged in an order that is not the activities' own (a statement's blocks cover 1,024 records each).
  const names = (prefix: string, count: number) =>
    Array.from({ length: count }, (_, i) => `${prefix}${String(count - i).padStart(5, '0')}`);
  const write = (activities: string[], mode: 'i' | 'u') =>
    db.pool.query(
      wfOps(db.schema).transition_write.text,
      transitionWriteParams(
        activities.map((activity) => ({
          workflowId,
          record: {
            activity,
            dimension: '',
            type: 'worker',
            state: 'running',
            job_id: null,
            input: null,
            output: null,
            hook: null,
            attempts: 0,
            errors: [],
          },
          entered: true,
          mode,
        })) as Parameters<typeof transitionWriteParams>[0],
        [],
        null,
      ),
    );
  const first = names('a', 1500);
  const second = names('b', 3);
  await write(first, 'i');
  // A record marked stored that is not there is inserted with its place in the statement's order too.
  await write([second[0]!, second[1]!], 'i');
  await write([second[2]!], 'u');
  const { rows } = await db.pool.query<{ activity: string; seq: string }>(
    `SELECT activity, seq FROM "${db.schema}".wf_activities WHERE workflow_id = $1 ORDER BY seq`,
    [workflowId],
  );
  t.deepEqual(
    rows.map((r) => r.activity),
    [...first, ...second],
  );
  t.is(new Set(rows.map((r) => r.seq)).size, rows.length, 'no seq taken twice');
});
