/**
 * kill -9 of one of two flow nodes while a three-stage flow with a parent stage of 100 children per
 * job runs: the other node rescues what the dead one held, every job finishes with every child's
 * record, and each stage (and each child's stage) ran once as a transition — a trigger records each
 * committed activity entry and finish in a table, so one that ran twice shows as a second row.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { until } from '../../../test/helpers/index.js';
import { killFlow } from './fixtures/flows/kill-flow.js';
import { assertEachTransitionOnce, nodeProcesses, recordTransitions } from './helpers.js';

const NODE_SCRIPT = fileURLToPath(new URL('./fixtures/flows/flow-node.ts', import.meta.url));
const JOBS = 10;
const CHILDREN = 100;

test.serial('kill -9 of one of two nodes during a flow with 100 children per job: every job finishes, each stage once', async (t) => {
  const {
    s,
    start,
    connect: connectClient,
  } = await nodeProcesses(t, { name: 'flow-kill', script: NODE_SCRIPT, prefix: 'FLOW', stepMs: 30 });
  const a = await start('node-a');
  const b = await start('node-b');
  await recordTransitions(s);
  const client = await connectClient();
  const flow = killFlow(0).useClient(client);
  const ids = await Promise.all(Array.from({ length: JOBS }, (_, i) => flow.createJob({ batch: `b${i % 2}`, children: CHILDREN })));

  const q = async (sql: string) => Number((await s.pool.query(sql)).rows[0].n);
  await until(
    'node-a runs child stages',
    async () =>
      (await q(
        `SELECT count(*) AS n FROM "${s.schema}".jobs WHERE state = 'running' AND type = 'flow.killed.part' AND locked_by = 'node-a'`,
      )) > 0,
    60_000,
    20,
  );
  const running = await q(`SELECT count(*) AS n FROM "${s.schema}".jobs WHERE state = 'running' AND locked_by = 'node-a'`);
  t.true(a.kill('SIGKILL'), 'node-a was running');
  t.log(`killed node-a with ${running} stage jobs running on it`);
  t.true(running > 0, 'the kill left stages mid-run');

  await until(
    'every flow job finished',
    async () => (await q(`SELECT count(*) AS n FROM "${s.schema}".wf_workflows WHERE status = 0 AND parent_id IS NULL`)) === JOBS,
    120_000,
    250,
  );
  let bExited = false;
  void b.exited.then(() => (bExited = true));
  await new Promise((r) => setImmediate(r));
  t.false(bExited, 'node-b ran to the end');
  const found = [...(await flow.getJobsByKey('batch', 'b0', true)), ...(await flow.getJobsByKey('batch', 'b1', true))];
  t.deepEqual(found.map((j) => j.id).sort(), [...ids].sort());
  const expectedSum = Array.from({ length: CHILDREN }, (_, i) => i * 2).reduce((x, y) => x + y, 0);
  for (const job of found) {
    t.like(job, { status: 'completed', stage: 'finish', state: { parts: CHILDREN, sum: expectedSum } });
    const kids = (job.children as unknown as Record<string, { status: string; state: { twice: number } }[]>)['part']!;
    t.is(kids.length, CHILDREN);
    t.true(kids.every((c, i) => c.status === 'completed' && c.state.twice === i * 2));
  }
  // Per job: t, q_prep, q_fan, f_fan_0, q_finish; per child: t, q_part.
  const activities = JOBS * 5 + JOBS * CHILDREN * 2;
  await assertEachTransitionOnce(t, s, activities, 'each stage entered once and finished once, none twice');
  const entered = await q(`SELECT count(*) AS n FROM "${s.schema}".wf_activities WHERE entered <> 1`);
  t.is(entered, 0);
  // A completed stage's job leaves no history row: its activity record is its history, and counts
  // the job's attempts (its stages do not fail, so a second attempt is a rescue, run by node-b).
  const rescued = await q(`SELECT count(*) AS n FROM "${s.schema}".wf_activities WHERE type = 'worker' AND attempts > 1`);
  t.log(`${rescued} stage jobs were rescued and completed on node-b`);
  t.true(rescued > 0, 'some stages were rescued from node-a');
});
