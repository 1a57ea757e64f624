/**
 * A fan-out of 1,000 children run by two node processes, one killed -9 midway: the steps it held are
 * rescued, every child ends once, the fan-in completes the parent's activity exactly once with all
 * 1,000 outputs in element order, and the step after it runs once. Transitions are recorded by a
 * trigger of the test's own (helpers.recordTransitions), so one that ran twice shows as a second row.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { until } from '../../../test/helpers/index.js';
import { app } from '../src/index.js';
import { assertEachTransitionOnce, nodeProcesses, recordTransitions } from './helpers.js';

const NODE_SCRIPT = fileURLToPath(new URL('./fixtures/run/wf-node.ts', import.meta.url));
const FAN = `
app:
  id: fankill
  version: '1'
  graphs:
    - subscribes: fk.start
      activities:
        t1: { type: trigger }
        fan:
          type: await
          topic: fk.child
          items: '{t1.output.data.list}'
          input: { maps: { i: '{$index}' } }
          job: { maps: { out: '{$self.output.data.items}' } }
        after: { type: worker, topic: wf.step }
      transitions:
        t1: [{ to: fan }]
        fan: [{ to: after }]
    - subscribes: fk.child
      activities:
        t1: { type: trigger }
        s1: { type: worker, topic: wf.step, job: { maps: { i: '{t1.output.data.i}', node: '{$self.output.data.node}' } } }
      transitions:
        t1: [{ to: s1 }]
`;

test.serial('kill -9 of one of two nodes during a fan-out of 1,000 children: the fan-in happens once, with every output', async (t) => {
  const K = 1000;
  const {
    s,
    start,
    connect: connectClient,
  } = await nodeProcesses(t, { name: 'wf-fankill', script: NODE_SCRIPT, prefix: 'WF', stepMs: 30 });
  const [a] = await Promise.all([start('node-a'), start('node-b')]);
  const client = await connectClient();
  const fan = app(client, 'fankill');
  await fan.deploy(FAN);
  await fan.activate('1');
  await recordTransitions(s);
  const id = await fan.pub('fk.start', { list: Array.from({ length: K }, () => ({})) });

  const q = async (sql: string) => Number((await s.pool.query(sql)).rows[0].n);
  await until(
    'a third of the children done',
    async () => (await q(`SELECT count(*) AS n FROM "${s.schema}".wf_activities WHERE type = 'worker' AND state = 'done'`)) >= K / 3,
    60_000,
    20,
  );
  const running = await q(`SELECT count(*) AS n FROM "${s.schema}".jobs WHERE state = 'running' AND type = 'wf.step'`);
  t.true(a!.kill('SIGKILL'), 'node-a was running');
  t.log(`killed node-a with ${running} steps running (both nodes)`);

  await until('the parent finished', async () => (await fan.getStatus(id)) === 0, 90_000, 100);
  const data = (await fan.getState('fk.start', id)).data as { out: { i: number; node: string }[] };
  t.is(data.out.length, K);
  t.true(
    data.out.every((o, i) => o.i === i),
    'outputs in element order',
  );
  t.true(data.out.some((o) => o.node === 'node-a') && data.out.some((o) => o.node === 'node-b'), 'both nodes ran children');
  // Parent: t1, fan, after; each child: t1, s1.
  const total = 3 + 2 * K;
  await assertEachTransitionOnce(t, s, total, 'every activity entered once and finished once, none twice');
  // A completed step's job leaves no history row: its activity record is its history (`attempts`
  // counts the job's attempts; the steps do not fail, so a second attempt is a rescue, and only
  // node-b was left to run it).
  const after = await q(`SELECT count(DISTINCT job_id) AS n FROM "${s.schema}".wf_activities WHERE type = 'worker' AND state = 'done'`);
  t.is(after, K + 1, 'one step job per child and one after the fan-in, each recorded once');
  t.is(await q(`SELECT count(*) AS n FROM "${s.schema}".wf_activities WHERE type = 'worker'`), K + 1);
  t.is(await q(`SELECT count(*) AS n FROM "${s.schema}".jobs WHERE type = 'wf.step'`), 0, 'no step job is left');
  const rescued = await q(`SELECT count(*) AS n FROM "${s.schema}".wf_activities WHERE type = 'worker' AND attempts > 1`);
  t.log(`${rescued} steps rescued by node-b`);
  t.true(rescued > 0, 'some steps of children were rescued from node-a and completed on node-b');
  t.is(await q(`SELECT count(*) AS n FROM "${s.schema}".wf_fanin`), 0, 'the fan-in took every output');
  t.is(await q(`SELECT count(*) AS n FROM "${s.schema}".wf_workflows WHERE parent_id IS NOT NULL AND status <> 0`), 0);
});
