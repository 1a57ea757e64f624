/**
 * kill -9 of a node while 1,000 workflows run: the steps it held are rescued by the other node, every
 * workflow finishes, and every transition happened exactly once. A trigger of the test's own records
 * each committed activity entry and each finish in a table, so a transition that ran twice (on both
 * nodes, or again after the rescue) shows as a second row; beside it each step's counter must be added
 * once and each step job completed once.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { until } from '../../../test/helpers/index.js';
import { app } from '../src/index.js';
import { assertEachTransitionOnce, counterChain, nodeProcesses, recordTransitions } from './helpers.js';

const NODE_SCRIPT = fileURLToPath(new URL('./fixtures/run/wf-node.ts', import.meta.url));
const CHAIN = counterChain({ id: 'chain', subscribes: 'chain.start', step: 'wf.step' });

test.serial('kill -9 of a node during 1,000 running workflows: each completes, every transition exactly once', async (t) => {
  const N = 1000;
  const { s, start, connect: connectClient } = await nodeProcesses(t, { name: 'wf-kill', script: NODE_SCRIPT, prefix: 'WF', stepMs: 40 });
  const a = await start('node-a');
  const client = await connectClient();
  const chain = app(client, 'chain');
  await chain.deploy(CHAIN);
  await chain.activate('1');
  await recordTransitions(s);
  // Started 50 at a time, as many callers would: the node is already running the first ones' steps.
  for (let i = 0; i < N; i += 50) await Promise.all(Array.from({ length: 50 }, (_, k) => chain.pub('chain.start', { i: i + k })));

  const q = async (sql: string) => Number((await s.pool.query(sql)).rows[0].n);
  await until(
    'node-a runs steps',
    async () => (await q(`SELECT count(*) AS n FROM "${s.schema}".jobs WHERE state = 'running'`)) > 0,
    30_000,
  );
  await until(
    'a third of the steps done',
    async () => (await q(`SELECT count(*) AS n FROM "${s.schema}".wf_activities WHERE type = 'worker' AND state = 'done'`)) >= N,
    60_000,
  );
  const running = await q(`SELECT count(*) AS n FROM "${s.schema}".jobs WHERE state = 'running' AND type = 'wf.step'`);
  t.true(a.kill('SIGKILL'), 'node-a was running');
  t.log(`killed node-a with ${running} steps running`);
  t.true(running > 0, 'the kill left steps mid-run (otherwise the test proves nothing)');
  await start('node-b');

  await until(
    'every workflow finished',
    async () => (await q(`SELECT count(*) AS n FROM "${s.schema}".wf_workflows WHERE status = 0`)) === N,
    90_000,
    200,
  );
  const rows = (await s.pool.query(`SELECT id, data FROM "${s.schema}".wf_workflows`)).rows;
  t.is(rows.length, N);
  t.true(
    rows.every((r) => r.data.n === 3),
    'each step added to the counter once',
  );
  const activities = (await s.pool.query(`SELECT workflow_id, activity, entered, state FROM "${s.schema}".wf_activities`)).rows;
  t.is(activities.length, N * 4, 't1, s1, s2, s3 once per workflow');
  t.true(activities.every((r) => r.entered === 1 && r.state === 'done'));
  await assertEachTransitionOnce(t, s, N * 4, 'each of the 4,000 activities entered once and finished once, none twice');
  // A completed step's job leaves no history row: its activity record is its history (`attempts`
  // counts the job's attempts, `job_id` is the job). The steps do not fail, so a second attempt is a
  // rescue, and only node-b was left to run it.
  const steps = (await s.pool.query(`SELECT job_id, state, attempts FROM "${s.schema}".wf_activities WHERE type = 'worker'`)).rows;
  t.is(steps.length, N * 3, 'one record per worker activity');
  t.true(steps.every((j) => j.state === 'done'));
  t.true(
    steps.some((j) => j.attempts > 1),
    'some steps were rescued and completed on node-b',
  );
  t.is(new Set(steps.map((j) => j.job_id as string)).size, N * 3, "each step's record holds its own job's id");
  t.is(await q(`SELECT count(*) AS n FROM "${s.schema}".jobs WHERE type = 'wf.step'`), 0, 'no step job is left');
  t.is(
    await q(`SELECT count(*) AS n FROM "${s.schema}".jobs_history WHERE type = 'wf.step'`),
    0,
    'none failed; no success has a history row',
  );
});
